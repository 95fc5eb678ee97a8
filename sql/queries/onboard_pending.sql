-- onboard_pending: models with an onboarding plan (evaluation_plan, reason 'onboard') to place in the run $run_id:
-- active, not trained in that run, not placed in it yet, and with at least one label on their planned questions.
-- A drift event (drift_events) after the run was trained, or after the model was placed in it, makes that
-- embedding stale: the model is placed again (re-onboarded). Returns the model's name and its planned question ids.
SELECT m.name AS model, list(p.question_id ORDER BY p.question_id) AS question_ids
FROM evaluation_plan p
JOIN models m USING (model_id)
LEFT JOIN correctness c ON c.model_id = p.model_id AND c.question_id = p.question_id
WHERE p.reason = 'onboard'
  AND m.active
  AND NOT EXISTS (SELECT 1 FROM model_embeddings e JOIN training_runs t USING (run_id)
                  WHERE e.run_id = $run_id AND e.model_id = m.model_id AND e.source = 'trained'
                    AND NOT EXISTS (SELECT 1 FROM drift_events d
                                    WHERE d.model_id = m.model_id AND d.detected_at >= t.created_at))
  AND NOT EXISTS (SELECT 1 FROM onboarded_models o
                  WHERE o.run_id = $run_id AND o.model_id = m.model_id
                    AND NOT EXISTS (SELECT 1 FROM drift_events d
                                    WHERE d.model_id = m.model_id AND d.detected_at >= o.created_at))
GROUP BY m.name, m.model_id
HAVING count(c.question_id) > 0
ORDER BY m.model_id;
