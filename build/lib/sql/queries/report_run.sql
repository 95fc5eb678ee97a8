-- report_run: one training run by id (config and metrics as JSON text).
SELECT run_id, created_at, preset, embedder, CAST(config AS VARCHAR) AS config,
       CAST(metrics AS VARCHAR) AS metrics, checkpoint_path, status
FROM training_runs
WHERE run_id = ?;
