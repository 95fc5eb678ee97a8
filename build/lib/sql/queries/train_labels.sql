-- train_labels: every current label (model_id, question_id, label) with the model's name.
SELECT c.model_id, m.name AS model, c.question_id, c.label
FROM correctness c
JOIN models m USING (model_id)
ORDER BY c.model_id, c.question_id;
