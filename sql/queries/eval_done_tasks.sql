-- Suite tasks a model already has complete results for: successful, non-partial evaluate runs at this model
-- revision and config whose limit covers the requested one ($eval_limit NULL = every document), started after
-- the model's last drift event (drift_events: its labels were superseded).
-- Parameters: $model, $revision, $model_config, $eval_limit. Returns task, task_version, label_rule.
SELECT DISTINCT task, task_version, label_rule
FROM eval_runs
WHERE model_name = $model
  AND model_revision IS NOT DISTINCT FROM $revision
  AND model_config IS NOT DISTINCT FROM $model_config
  AND status = 'success'
  AND NOT partial
  AND NOT EXISTS (SELECT 1 FROM drift_events d WHERE d.model_id = eval_runs.model_id AND d.detected_at >= eval_runs.started_at)
  AND (eval_limit IS NULL OR ($eval_limit IS NOT NULL AND eval_limit >= $eval_limit));
