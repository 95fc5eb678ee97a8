-- train_embedder_coverage: per embedder, how many labelled questions have an embedding, most coverage first.
SELECT e.embedder, count(*) AS n_questions, max(len(e.embedding)) AS dim
FROM question_embeddings e
WHERE e.question_id IN (SELECT DISTINCT question_id FROM correctness)
GROUP BY e.embedder
ORDER BY n_questions DESC, e.embedder;
