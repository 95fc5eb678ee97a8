-- drift_stored_labels: the stored labels of model $model_id on the sentinel questions of the tasks $tasks.
SELECT s.question_id, s.task, s.doc_id, c.label
FROM drift_sentinels s
JOIN correctness c ON c.question_id = s.question_id AND c.model_id = $model_id
WHERE list_contains($tasks::VARCHAR[], s.task)
ORDER BY s.position;
