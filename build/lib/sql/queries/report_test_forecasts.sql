-- report_test_forecasts: a run's correctness forecasts on test-split questions that have a label.
SELECT f.model_id, f.question_id, f.p_correct, c.label
FROM correctness_forecasts f
JOIN correctness c USING (model_id, question_id)
JOIN questions q USING (question_id)
WHERE f.run_id = ? AND q.split = 'test'
ORDER BY f.question_id, f.model_id;
