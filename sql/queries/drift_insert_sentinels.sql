-- drift_insert_sentinels: record the sentinel choice from the registered frame _sentinels (question_id,
-- benchmark, task, doc_id, position, chosen_at); only ever into an empty table (the choice never moves).
INSERT INTO drift_sentinels (question_id, benchmark, task, doc_id, position, chosen_at)
SELECT question_id, benchmark, task, doc_id, position, chosen_at FROM _sentinels
WHERE NOT EXISTS (SELECT 1 FROM drift_sentinels);
