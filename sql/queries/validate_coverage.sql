-- validate_coverage: per active model, how many of the questions it was asked to answer it has labels for, and
-- the gap: missing counts per benchmark and the first $n_examples missing questions (task#doc_id).
-- Scope: all questions ($all_questions), else those whose task is in $tasks or benchmark in $benchmarks.
-- What a model was asked to answer (`plan`):
--   'suite'  every question in scope: a model evaluated on the whole suite (or with no evaluation plan, e.g. a
--            model of an imported EmbedLLM dataset, which is a full matrix by definition);
--   'plan'   its evaluation_plan pairs in scope: a model with plan rows (onboarding, a budget, what an lm-eval
--            import held) and no full (non-partial) evaluate run since its last drift event. A sparse matrix by plan is not a gap.
-- n_scope: the questions in scope (the suite_questions_present check: the warehouse holds some).
-- Only models with fewer labels than expected questions are searched for the missing pairs (count(DISTINCT)
-- costs 5x more at 4M labels); duplicate rows, which label_pair_unique reports, could hide a gap of their size.
WITH scope AS (
    SELECT question_id, benchmark, task, doc_id
    FROM questions
    WHERE $all_questions
       OR list_contains($tasks::VARCHAR[], task)
       OR list_contains($benchmarks::VARCHAR[], benchmark)
),
planned_models AS (
    SELECT DISTINCT p.model_id
    FROM evaluation_plan p
    WHERE NOT EXISTS (SELECT 1 FROM eval_runs r WHERE r.model_id = p.model_id AND NOT r.partial
                      AND NOT EXISTS (SELECT 1 FROM drift_events d WHERE d.model_id = r.model_id AND d.detected_at >= r.started_at))
),
planned AS (
    SELECT p.model_id, p.question_id
    FROM evaluation_plan p
    SEMI JOIN planned_models USING (model_id)
    SEMI JOIN scope USING (question_id)
),
labelled_suite AS (
    SELECT c.model_id, count(*) AS n_labelled
    FROM correctness c
    SEMI JOIN scope s USING (question_id)
    GROUP BY c.model_id
),
labelled_plan AS (
    SELECT c.model_id, count(*) AS n_labelled
    FROM correctness c
    SEMI JOIN planned p ON p.model_id = c.model_id AND p.question_id = c.question_id
    GROUP BY c.model_id
),
planned_counts AS (
    SELECT model_id, count(*) AS n_expected FROM planned GROUP BY model_id
),
counts AS (
    SELECT m.model_id, m.name AS model,
           CASE WHEN pm.model_id IS NULL THEN 'suite' ELSE 'plan' END AS plan,
           CASE WHEN pm.model_id IS NULL THEN (SELECT count(*) FROM scope)
                ELSE coalesce(pc.n_expected, 0) END AS n_expected,
           CASE WHEN pm.model_id IS NULL THEN coalesce(ls.n_labelled, 0)
                ELSE coalesce(lp.n_labelled, 0) END AS n_labelled
    FROM models m
    LEFT JOIN planned_models pm USING (model_id)
    LEFT JOIN planned_counts pc USING (model_id)
    LEFT JOIN labelled_suite ls USING (model_id)
    LEFT JOIN labelled_plan lp USING (model_id)
    WHERE m.active
),
short AS (
    SELECT model_id, plan FROM counts WHERE n_labelled < n_expected
),
expected_short AS (
    SELECT s.model_id, e.question_id FROM short s CROSS JOIN scope e WHERE s.plan = 'suite'
    UNION ALL
    SELECT p.model_id, p.question_id FROM planned p SEMI JOIN short s ON s.model_id = p.model_id AND s.plan = 'plan'
),
gaps AS (
    SELECT x.model_id, e.benchmark, e.task, e.doc_id, e.question_id,
           e.task || '#' || coalesce(e.doc_id::VARCHAR, e.question_id) AS example
    FROM expected_short x
    JOIN scope e USING (question_id)
    ANTI JOIN (SELECT model_id, question_id FROM correctness WHERE model_id IN (SELECT model_id FROM short)) c
        ON c.model_id = x.model_id AND c.question_id = x.question_id
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
SELECT k.model, k.plan, (SELECT count(*) FROM scope) AS n_scope, k.n_expected, k.n_labelled, coalesce(b.n_missing, 0)::BIGINT AS n_missing,
       coalesce(b.missing_by_benchmark, '') AS missing_by_benchmark,
       coalesce(x.missing_examples, '') AS missing_examples
FROM counts k
LEFT JOIN by_benchmark b USING (model_id)
LEFT JOIN examples x USING (model_id)
ORDER BY n_missing DESC, k.model;
