-- route_models: the model vectors of run $run_id (trained and onboarded) with name, active flag and cost.
SELECT e.model_id, m.name, m.active, m.cost_per_mtok, e.embedding, e.source
FROM model_embeddings e
JOIN models m USING (model_id)
WHERE e.run_id = $run_id
ORDER BY e.model_id;
