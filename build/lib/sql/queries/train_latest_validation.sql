-- train_latest_validation: the most recent validation run (written by `embedllm validate`).
SELECT run_id, created_at, success, n_failed, n_errors
FROM validation_runs
ORDER BY created_at DESC
LIMIT 1;
