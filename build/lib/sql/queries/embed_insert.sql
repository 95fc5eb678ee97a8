-- embed_insert: store the vectors of the registered arrow table _new_embeddings(question_id, embedder, embedding).
INSERT OR IGNORE INTO question_embeddings (question_id, embedder, embedding)
SELECT question_id, embedder, embedding
FROM _new_embeddings;
