-- serve_questions: the train-split questions embedded with $embedder (what a routing service explains with):
-- id, benchmark, the first 300 characters of the prompt and the vector.
SELECT q.question_id, q.benchmark, left(q.prompt, 300) AS prompt, e.embedding
FROM questions q
JOIN question_embeddings e ON e.question_id = q.question_id AND e.embedder = $embedder
WHERE q.split = 'train'
ORDER BY q.question_id;
