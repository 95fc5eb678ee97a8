-- plan_model_states: what the plan step needs to apply the evaluation policy (embedllm/policy.py `decide`) to
-- every active registry model: its own policy fields, how many labels it has, whether it has an onboarding plan,
-- whether a full (non-partial) evaluate run of it started since its last drift event (drift_events), and whether a completed training run exists.
SELECT m.model_id, m.name, m.onboard_questions, m.full_evaluation,
       (SELECT count(*) FROM correctness c WHERE c.model_id = m.model_id) AS n_labels,
       EXISTS (SELECT 1 FROM evaluation_plan p WHERE p.model_id = m.model_id AND p.reason = 'onboard')
           AS onboarded,
       EXISTS (SELECT 1 FROM eval_runs r WHERE r.model_id = m.model_id AND NOT r.partial
               AND NOT EXISTS (SELECT 1 FROM drift_events d WHERE d.model_id = r.model_id AND d.detected_at >= r.started_at))
           AS full_started,
       EXISTS (SELECT 1 FROM training_runs t WHERE t.status = 'completed') AS run_exists
FROM models m
WHERE m.active AND m.source = 'registry'
ORDER BY m.model_id;
