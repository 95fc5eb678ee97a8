-- Suite tasks whose evaluate batches are in the warehouse even if no eval_runs row says so (a run killed after
-- the load, or a flow that loaded staging with the plain loader). Groups count only when every batch of the
-- run is there; loads before the model's last drift event do not count. Parameter: $model. Returns task, task_version, label_rule, model_config, model_revision,
-- eval_limit, partial.
SELECT details->>'suite_task'                    AS task,
       details->>'suite_task_version'            AS task_version,
       details->>'suite_label_rule'              AS label_rule,
       details->>'model_config'                  AS model_config,
       l.model_revision                          AS model_revision,
       TRY_CAST(details->>'eval_limit' AS INTEGER) AS eval_limit,
       coalesce(TRY_CAST(details->>'partial' AS BOOLEAN), false) AS partial
FROM loads l
JOIN models m USING (model_id)
WHERE m.name = $model AND l.kind = 'evaluate' AND details->>'suite_task' IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM drift_events d WHERE d.model_id = l.model_id AND d.detected_at >= l.started_at)
GROUP BY details->>'job_key', details->>'n_batches', 1, 2, 3, 4, 5, 6, 7
HAVING count(*) >= coalesce(TRY_CAST(details->>'n_batches' AS INTEGER), 1);
