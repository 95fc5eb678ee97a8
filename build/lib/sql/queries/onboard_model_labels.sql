-- onboard_model_labels: one model's current labels on the questions $question_ids, with the load they came from.
SELECT c.question_id, c.label, c.load_id
FROM correctness c
JOIN models m USING (model_id)
WHERE m.name = $model AND list_contains($question_ids, c.question_id);
