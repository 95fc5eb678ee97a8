-- serve_version: what a routing service compares to decide whether to reload: the latest completed run (or the
-- pinned $run_id), how many model vectors it holds (onboarding adds some), when the last one was onboarded,
-- and the last registry change (a new endpoint, cost or deactivation).
WITH run AS (
    SELECT run_id
    FROM training_runs
    WHERE ($run_id IS NULL AND status = 'completed') OR run_id = $run_id
    ORDER BY created_at DESC, run_id DESC
    LIMIT 1
)
SELECT run.run_id,
       (SELECT count(*) FROM model_embeddings e WHERE e.run_id = run.run_id) AS n_vectors,
       (SELECT max(o.created_at)::VARCHAR FROM onboarded_models o WHERE o.run_id = run.run_id) AS onboarded_at,
       (SELECT max(history_id) FROM models_history) AS registry_change
FROM run;
