-- Register a new model (parameters: name, revision, backend, model_args, gguf_file, trust_remote_code,
-- cost_per_mtok, tags, eval_args, base_url, api_key_env, onboard_questions, full_evaluation, registry_file);
-- returns its model_id.
INSERT INTO models (name, revision, backend, model_args, gguf_file, trust_remote_code, cost_per_mtok, tags,
                    eval_args, base_url, api_key_env, onboard_questions, full_evaluation, registry_file, source,
                    active)
VALUES (?, ?, ?, ?::JSON, ?, ?, ?, ?, ?::JSON, ?, ?, ?, ?, ?, 'registry', true)
RETURNING model_id;
