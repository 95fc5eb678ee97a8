-- The change history of the registry, oldest first (optionally of one model: $name NULL = all).
SELECT history_id, model_id, name, change, changed_fields, previous_revision, revision, registry_file, changed_at
FROM models_history
WHERE $name IS NULL OR name = $name
ORDER BY history_id;
