-- drift_revision_changes: registry revision changes (models_history, change 'updated' with 'revision' among
-- the changed fields) of active registry models that no drift event has handled yet, oldest first.
SELECT h.history_id, h.model_id, m.name, h.previous_revision, h.revision, h.changed_at
FROM models_history h
JOIN models m USING (model_id)
WHERE h.change = 'updated' AND list_contains(h.changed_fields, 'revision')
  AND m.active AND m.source = 'registry'
  AND NOT EXISTS (SELECT 1 FROM drift_events d WHERE d.history_id = h.history_id)
ORDER BY h.history_id;
