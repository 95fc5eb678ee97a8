-- onboard_existing_labels: the current labels of the run's models ($model_ids) on questions embedded by
-- $embedder: the population the onboarding prior (model vectors and per-benchmark offsets) is drawn from.
SELECT c.model_id, c.question_id, c.label
FROM correctness c
JOIN question_embeddings e ON e.question_id = c.question_id AND e.embedder = $embedder
WHERE list_contains($model_ids, c.model_id);
