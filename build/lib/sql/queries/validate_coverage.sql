-- validate_coverage: per active model, how many of the expected questions it has labels for, and the gap:
-- missing counts per benchmark and the first $n_examples missing questions (task#doc_id).
-- Expected questions: all ($all_questions), else those whose task is in $tasks or benchmark in $benchmarks.
-- Only models with fewer label rows than expected questions are searched for the missing pairs (count(DISTINCT)
-- costs 5x more at 4M labels); duplicate rows, which label_pair_unique reports, could hide a gap of their size.
WITH expected AS (
    SELECT question_id, benchmark, task, doc_id
    FROM questions
    WHERE $all_questions
       OR list_contains($tasks::VARCHAR[], task)
       OR list_contains($benchmarks::VARCHAR[], benchmark)
),
labelled AS (
    SELECT c.model_id, count(*) AS n_labelled
    FROM correctness c
    SEMI JOIN expected e USING (question_id)
    GROUP BY c.model_id
),
counts AS (
    SELECT m.model_id, m.name AS model, (SELECT count(*) FROM expected) AS n_expected,
           coalesce(l.n_labelled, 0) AS n_labelled
    FROM models m
    LEFT JOIN labelled l USING (model_id)
    WHERE m.active
),
short AS (
    SELECT model_id FROM counts WHERE n_labelled < n_expected
),
gaps AS (
    SELECT s.model_id, e.benchmark, e.task, e.doc_id, e.question_id,
           e.task || '#' || coalesce(e.doc_id::VARCHAR, e.question_id) AS example
    FROM short s
    CROSS JOIN expected e
    ANTI JOIN (SELECT model_id, question_id FROM correctness WHERE model_id IN (SELECT model_id FROM short)) c
        ON c.model_id = s.model_id AND c.question_id = e.question_id
),
by_benchmark AS (
    SELECT model_id, sum(n) AS n_missing,
           string_agg(benchmark || ': ' || n, ', ' ORDER BY n DESC, benchmark) AS missing_by_benchmark
    FROM (SELECT model_id, benchmark, count(*) AS n FROM gaps GROUP BY model_id, benchmark)
    GROUP BY model_id
),
examples AS (
    SELECT model_id, array_to_string(list(example ORDER BY task, doc_id, question_id)[1:$n_examples], ', ')
               AS missing_examples
    FROM gaps
    GROUP BY model_id
)
SELECT k.model, k.n_expected, k.n_labelled, coalesce(b.n_missing, 0)::BIGINT AS n_missing,
       coalesce(b.missing_by_benchmark, '') AS missing_by_benchmark,
       coalesce(x.missing_examples, '') AS missing_examples
FROM counts k
LEFT JOIN by_benchmark b USING (model_id)
LEFT JOIN examples x USING (model_id)
ORDER BY n_missing DESC, k.model;
