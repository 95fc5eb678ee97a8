-- train_missing_embeddings: how many labelled questions lack an embedding from embedder $embedder.
SELECT count(DISTINCT c.question_id) AS n_missing
FROM correctness c
WHERE NOT EXISTS (SELECT 1 FROM question_embeddings e
                  WHERE e.question_id = c.question_id AND e.embedder = $embedder);
