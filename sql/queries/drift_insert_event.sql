-- drift_insert_event: one drift event (parameters: model_id, detected_at, reason, n, disagreements, p_value,
-- noise, alpha, history_id, labels_removed, details).
INSERT INTO drift_events (model_id, detected_at, reason, n, disagreements, p_value, noise, alpha, history_id,
                          labels_removed, details)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::JSON);
