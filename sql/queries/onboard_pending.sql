-- onboard_pending: models with an onboarding plan (evaluation_plan, reason 'onboard') to place in the run $run_id:
-- active, not trained in that run, not placed in it yet, and with at least one label on their planned questions.
-- Returns the model's name and its planned question ids.
SELECT m.name AS model, list(p.question_id ORDER BY p.question_id) AS question_ids
FROM evaluation_plan p
JOIN models m USING (model_id)
LEFT JOIN correctness c ON c.model_id = p.model_id AND c.question_id = p.question_id
WHERE p.reason = 'onboard'
  AND m.active
  AND NOT EXISTS (SELECT 1 FROM model_embeddings e WHERE e.run_id = $run_id AND e.model_id = m.model_id)
  AND NOT EXISTS (SELECT 1 FROM onboarded_models o WHERE o.run_id = $run_id AND o.model_id = m.model_id)
GROUP BY m.name, m.model_id
HAVING count(c.question_id) > 0
ORDER BY m.model_id;
