-- status: question embeddings per embedder
SELECT embedder, count(*) AS questions, max(len(embedding)) AS dim
FROM question_embeddings GROUP BY embedder ORDER BY embedder
