-- train_questions: the labelled questions with their split, benchmark and embedding from $embedder.
SELECT q.question_id, q.benchmark, q.split, e.embedding
FROM questions q
JOIN question_embeddings e ON e.question_id = q.question_id AND e.embedder = $embedder
WHERE q.question_id IN (SELECT DISTINCT question_id FROM correctness)
ORDER BY q.question_id;
