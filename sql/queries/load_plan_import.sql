-- load_plan_import: an lm-eval import counts as planned for what it holds: record its (model, question) pairs
-- from the registered batch _batch in evaluation_plan (reason 'import'; parameter: planned_at), so validation
-- checks an imported partial run against its own questions. A pair planned before keeps its first reason.
INSERT OR IGNORE INTO evaluation_plan (model_id, question_id, reason, run_id, planned_at)
SELECT DISTINCT m.model_id, b.question_id, 'import', NULL, ?::TIMESTAMP
FROM _batch b
JOIN models m ON m.name = b.model;
