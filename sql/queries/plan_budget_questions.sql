-- plan_budget_questions: up to $n questions of the tasks $tasks a model ($model_id) has no label for and lm-eval
-- can evaluate alone (a doc id), in question-id order (a hash: spread over tasks and benchmarks).
SELECT q.question_id, q.task, q.doc_id
FROM questions q
WHERE list_contains($tasks::VARCHAR[], q.task)
  AND q.doc_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM correctness c WHERE c.model_id = $model_id AND c.question_id = q.question_id)
ORDER BY q.question_id
LIMIT $n;
