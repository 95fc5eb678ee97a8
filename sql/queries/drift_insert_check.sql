-- drift_insert_check: one re-ask of the sentinels (parameters: model_id, checked_at, status, n, disagreements,
-- p_value, drifted, error, details).
INSERT INTO drift_checks (model_id, checked_at, status, n, disagreements, p_value, drifted, error, details)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?::JSON);
