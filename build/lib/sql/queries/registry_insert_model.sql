-- Register a new model (parameters: name, revision, backend, model_args, gguf_file, trust_remote_code,
-- cost_per_mtok, tags, eval_args).
INSERT INTO models (name, revision, backend, model_args, gguf_file, trust_remote_code, cost_per_mtok, tags,
                    eval_args, source, active)
VALUES (?, ?, ?, ?::JSON, ?, ?, ?, ?, ?::JSON, 'registry', true);
