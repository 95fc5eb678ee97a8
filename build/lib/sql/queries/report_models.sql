-- report_models: every model with an embedding in a run: name, family, tags, cost and the vector.
SELECT m.model_id, m.name, m.family, m.tags, m.cost_per_mtok, e.embedding, e.source
FROM model_embeddings e
JOIN models m USING (model_id)
WHERE e.run_id = ?
ORDER BY m.name;
