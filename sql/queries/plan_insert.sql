-- plan_insert: record planned (model, question) pairs from the registered frame _plan (model_id, question_id,
-- reason, run_id, planned_at); a pair planned before keeps its first reason.
INSERT OR IGNORE INTO evaluation_plan (model_id, question_id, reason, run_id, planned_at)
SELECT model_id, question_id, reason, run_id, planned_at FROM _plan;
