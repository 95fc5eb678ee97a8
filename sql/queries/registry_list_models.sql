-- Every row of the models table, registry entries and names created by imports, oldest first.
SELECT model_id, name, revision, backend, model_args::VARCHAR AS model_args, gguf_file, trust_remote_code,
       cost_per_mtok, tags, eval_args::VARCHAR AS eval_args, base_url, api_key_env, registry_file,
       onboard_questions, full_evaluation, family, source, active, added_at, removed_at
FROM models
ORDER BY model_id;
