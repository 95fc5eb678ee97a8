-- leaderboard: accuracy of every model on every benchmark, from the current labels.
CREATE OR REPLACE VIEW leaderboard AS
SELECT m.name                        AS model,
       q.benchmark                   AS benchmark,
       avg(c.label)::DOUBLE          AS accuracy,
       count(*)                      AS n_questions
FROM correctness c
JOIN models m USING (model_id)
JOIN questions q USING (question_id)
GROUP BY m.name, q.benchmark
ORDER BY q.benchmark, accuracy DESC, model;
