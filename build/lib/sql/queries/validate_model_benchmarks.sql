-- validate_model_benchmarks: one row per (active model, benchmark): its labels and accuracy, and the same over the
-- benchmark's multiple-choice questions (n_choices >= 2) with the accuracy of random guessing there:
-- chance = mean of 1/n_choices, chance_sd = standard deviation of a random guesser's accuracy.
-- tasks/validate.py turns this into two frames: all-equal labels (n_labels >= constant_labels.min_questions)
-- and accuracy below chance (n_mc >= chance.min_questions).
SELECT m.name                                                                        AS model,
       q.benchmark,
       count(*)                                                                      AS n_labels,
       avg(c.label)::DOUBLE                                                          AS accuracy,
       count(*) FILTER (WHERE q.n_choices >= 2)                                      AS n_mc,
       (avg(c.label) FILTER (WHERE q.n_choices >= 2))::DOUBLE                        AS mc_accuracy,
       (avg(1.0 / q.n_choices) FILTER (WHERE q.n_choices >= 2))::DOUBLE              AS chance,
       sqrt(sum((1.0 / q.n_choices) * (1 - 1.0 / q.n_choices)) FILTER (WHERE q.n_choices >= 2))
           / nullif(count(*) FILTER (WHERE q.n_choices >= 2), 0)::DOUBLE             AS chance_sd
FROM correctness c
JOIN models m USING (model_id)
JOIN questions q USING (question_id)
WHERE m.active
GROUP BY m.name, q.benchmark
ORDER BY m.name, q.benchmark;
