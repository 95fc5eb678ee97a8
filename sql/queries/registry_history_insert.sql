-- Record one change of a registry entry (parameters: model_id, name, change, changed_fields, previous_revision,
-- revision, entry, registry_file).
INSERT INTO models_history (model_id, name, change, changed_fields, previous_revision, revision, entry,
                            registry_file)
VALUES (?, ?, ?, ?, ?, ?, ?::JSON, ?);
