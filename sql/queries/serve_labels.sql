-- serve_labels: the observed labels of run $run_id's models on train-split questions embedded with $embedder.
SELECT c.model_id, c.question_id, c.label
FROM correctness c
JOIN questions q ON q.question_id = c.question_id AND q.split = 'train'
JOIN question_embeddings e ON e.question_id = c.question_id AND e.embedder = $embedder
WHERE c.model_id IN (SELECT model_id FROM model_embeddings WHERE run_id = $run_id);
