-- latest_training_run: the most recent completed training run (one row).
CREATE OR REPLACE VIEW latest_training_run AS
SELECT *
FROM training_runs
WHERE status = 'completed'
ORDER BY created_at DESC, run_id DESC
LIMIT 1;
