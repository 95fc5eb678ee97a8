-- status: the latest validation run
SELECT strftime(created_at, '%Y-%m-%d %H:%M:%S') AS created_utc, success, n_expectations, n_failed, n_errors
FROM validation_runs ORDER BY created_at DESC LIMIT 1
