-- drift_models: active registry models with the fields that say whether their revision can move (revision,
-- base_url) and how many labels they have on the sentinel questions of the tasks $tasks.
SELECT m.model_id, m.name, m.revision, m.base_url, m.backend,
       (SELECT count(*) FROM correctness c JOIN drift_sentinels s ON s.question_id = c.question_id
        WHERE c.model_id = m.model_id AND list_contains($tasks::VARCHAR[], s.task)) AS n_sentinel_labels
FROM models m
WHERE m.active AND m.source = 'registry'
ORDER BY m.model_id;
