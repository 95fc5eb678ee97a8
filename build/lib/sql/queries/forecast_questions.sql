-- forecast_questions: every question with an embedding from $embedder (evaluated or not), with its benchmark.
SELECT q.question_id, q.benchmark, e.embedding
FROM questions q
JOIN question_embeddings e ON e.question_id = q.question_id AND e.embedder = $embedder
ORDER BY q.question_id;
