-- validate_split_shares: each split's share of the questions against its target ($train, $val, $test).
-- allowed_deviation = max($tolerance, $sigmas binomial standard deviations): small suites get a wider band.
WITH targets(split, target) AS (
    VALUES ('train', $train::DOUBLE), ('val', $val::DOUBLE), ('test', $test::DOUBLE)
),
counts AS (SELECT split, count(*) AS n FROM questions GROUP BY split),
total AS (SELECT count(*) AS n FROM questions)
SELECT t.split,
       coalesce(c.n, 0)                                                     AS n_questions,
       total.n                                                              AS n_total,
       coalesce(c.n, 0) / greatest(total.n, 1)::DOUBLE                      AS share,
       t.target,
       abs(coalesce(c.n, 0) / greatest(total.n, 1)::DOUBLE - t.target)      AS deviation,
       greatest($tolerance::DOUBLE,
                $sigmas::DOUBLE * sqrt(t.target * (1 - t.target) / greatest(total.n, 1)))  AS allowed_deviation
FROM targets t
CROSS JOIN total
LEFT JOIN counts c USING (split)
ORDER BY t.target DESC, t.split;
