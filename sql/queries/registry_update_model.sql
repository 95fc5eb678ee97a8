-- Re-register an existing name: new settings, active again, keeps model_id so its labels stay attached
-- (parameters: revision, backend, model_args, gguf_file, trust_remote_code, cost_per_mtok, tags, eval_args,
-- base_url, api_key_env, onboard_questions, full_evaluation, registry_file, name).
UPDATE models
SET revision = ?, backend = ?, model_args = ?::JSON, gguf_file = ?, trust_remote_code = ?, cost_per_mtok = ?,
    tags = ?, eval_args = ?::JSON, base_url = ?, api_key_env = ?, onboard_questions = ?, full_evaluation = ?,
    registry_file = ?, source = 'registry', active = true, removed_at = NULL
WHERE name = ?;
