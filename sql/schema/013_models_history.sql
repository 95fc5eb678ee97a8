-- models.registry_file: the registry file that manages an entry (NULL = registered ad hoc with `embedllm models
-- add`). Syncing a file deactivates only the entries it manages and no longer lists.
-- models_history: one row per change of a registry entry (added, updated, deactivated, reactivated), with the
-- entry as it was after the change; labels and evaluation history stay attached to model_id throughout.
ALTER TABLE models ADD COLUMN IF NOT EXISTS registry_file VARCHAR;
CREATE SEQUENCE IF NOT EXISTS models_history_seq START 1;
CREATE TABLE IF NOT EXISTS models_history (
    history_id        BIGINT PRIMARY KEY DEFAULT nextval('models_history_seq'),
    model_id          INTEGER NOT NULL,
    name              VARCHAR NOT NULL,
    change            VARCHAR NOT NULL,          -- added | updated | deactivated | reactivated
    changed_fields    VARCHAR[],                 -- for updated: which settings changed
    previous_revision VARCHAR,
    revision          VARCHAR,
    entry             JSON,                      -- the entry's settings after the change
    registry_file     VARCHAR,                   -- the file whose sync made the change; NULL = `embedllm models`
    changed_at        TIMESTAMP NOT NULL DEFAULT current_timestamp
);
