-- report_recent_runs: the ten most recent training runs, for did-you-mean on an unknown --run.
SELECT run_id, created_at, status
FROM training_runs
ORDER BY created_at DESC, run_id DESC
LIMIT 10;
