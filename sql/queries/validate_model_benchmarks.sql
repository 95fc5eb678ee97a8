-- validate_model_benchmarks: each active model's accuracy on each benchmark where it has >= $min_questions labels
-- (accuracy 0 or 1 there means all-equal labels: a broken label rule or a broken model run).
SELECT m.name AS model, q.benchmark, count(*) AS n_labels, avg(c.label)::DOUBLE AS accuracy
FROM correctness c
JOIN models m USING (model_id)
JOIN questions q USING (question_id)
WHERE m.active
GROUP BY m.name, q.benchmark
HAVING count(*) >= $min_questions
ORDER BY m.name, q.benchmark;
