-- embed_dimension: how many vectors $embedder has stored and their lengths (all equal unless something is wrong).
SELECT count(*) AS n, min(len(embedding)) AS min_dim, max(len(embedding)) AS max_dim
FROM question_embeddings
WHERE embedder = $embedder;
