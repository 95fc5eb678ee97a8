-- The latest evaluate attempts, newest first (parameter: $n).
SELECT started_at, model_name AS model, suite, task, status, n_samples, round(seconds, 1) AS seconds, error
FROM eval_runs
ORDER BY started_at DESC, model_name, task
LIMIT $n;
