-- train_run: one training run by id, or the latest completed one when $run_id is NULL.
SELECT run_id, created_at, preset, embedder, config, metrics, checkpoint_path, status
FROM training_runs
WHERE ($run_id IS NULL AND status = 'completed') OR run_id = $run_id
ORDER BY created_at DESC, run_id DESC
LIMIT 1;
