-- Re-register an existing name: new settings, active again, keeps model_id so its labels stay attached
-- (parameters: revision, backend, model_args, gguf_file, trust_remote_code, cost_per_mtok, tags, eval_args, name).
UPDATE models
SET revision = ?, backend = ?, model_args = ?::JSON, gguf_file = ?, trust_remote_code = ?, cost_per_mtok = ?,
    tags = ?, eval_args = ?::JSON, source = 'registry', active = true, removed_at = NULL
WHERE name = ?;
