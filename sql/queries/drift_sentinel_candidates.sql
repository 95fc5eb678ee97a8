-- drift_sentinel_candidates: questions the sentinels can be chosen from: evaluated through lm-eval (a doc id to
-- re-ask) in one of the suite's tasks ($tasks).
SELECT question_id, benchmark, task, doc_id
FROM questions
WHERE doc_id IS NOT NULL AND list_contains($tasks::VARCHAR[], task)
ORDER BY question_id;
