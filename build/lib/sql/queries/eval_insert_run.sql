-- One evaluate attempt of a (model, task) (parameters in column order below).
INSERT INTO eval_runs (run_id, job_key, model_id, model_name, model_revision, suite, task, benchmark, task_version,
                       label_rule, model_config, status, error_type, error, eval_limit, partial, n_samples, load_ids,
                       lm_eval_version, code_version, details, started_at, seconds)
VALUES (?, ?, (SELECT model_id FROM models WHERE name = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
        ?::JSON, ?, ?);
