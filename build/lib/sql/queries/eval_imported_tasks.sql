-- Tasks a model has labels for from imports (lm-eval output folders), with their task version and revision.
-- Parameter: $model. Returns task, task_version, model_revision.
SELECT DISTINCT l.task, l.task_version, l.model_revision
FROM loads l
JOIN models m USING (model_id)
WHERE m.name = $model AND l.kind <> 'evaluate' AND l.task IS NOT NULL;
