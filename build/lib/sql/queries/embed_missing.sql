-- embed_missing: the questions without a vector from $embedder (what `embedllm embed` encodes).
SELECT q.question_id, q.prompt
FROM questions q
WHERE NOT EXISTS (SELECT 1 FROM question_embeddings e
                  WHERE e.question_id = q.question_id AND e.embedder = $embedder)
ORDER BY q.question_id;
