-- validate_chance: each active model's accuracy on the multiple-choice questions (n_choices >= 2) of each
-- benchmark where it has >= $min_questions of them, against random guessing: chance = mean of 1/n_choices,
-- chance_floor = chance - max($margin, $sigmas standard deviations of a random guesser's accuracy).
WITH cells AS (
    SELECT m.name AS model, q.benchmark, count(*) AS n_labels, avg(c.label)::DOUBLE AS accuracy,
           avg(1.0 / q.n_choices) AS chance,
           sqrt(sum((1.0 / q.n_choices) * (1 - 1.0 / q.n_choices))) / count(*) AS chance_sd
    FROM correctness c
    JOIN models m USING (model_id)
    JOIN questions q USING (question_id)
    WHERE m.active AND q.n_choices >= 2
    GROUP BY m.name, q.benchmark
    HAVING count(*) >= $min_questions
)
SELECT model, benchmark, n_labels, accuracy, chance,
       chance - greatest($margin::DOUBLE, $sigmas::DOUBLE * chance_sd) AS chance_floor
FROM cells
ORDER BY model, benchmark;
