-- eval_runs: one row per (model, task) attempt of the evaluate stage, successful or not. A model that fails to
-- load (bad id, out of memory, a GGUF that does not load) gets a failed row for every task it was to run; a task
-- that errors gets a failed row of its own; the other models and tasks go on. Planning skips (model, task)
-- pairs with a success row at the same task version and model revision covering at least the requested limit.
CREATE TABLE IF NOT EXISTS eval_runs (
    run_id          VARCHAR PRIMARY KEY,
    job_key         VARCHAR NOT NULL,   -- EvalJob.cache_key: model, revision, eval args, tasks and versions
    model_id        INTEGER,
    model_name      VARCHAR NOT NULL,
    model_revision  VARCHAR,
    suite           VARCHAR,
    task            VARCHAR NOT NULL,   -- the suite's lm-eval task or group name
    benchmark       VARCHAR,
    task_version    VARCHAR,            -- the task's metadata.version in lm-eval's YAML
    label_rule      VARCHAR,
    model_config    VARCHAR,            -- hash of backend, model_args, gguf_file and eval_args of the entry
    status          VARCHAR NOT NULL CHECK (status IN ('success', 'failed')),
    error_type      VARCHAR,            -- model-load | task | load | interrupted ...
    error           VARCHAR,            -- one-line message for failed rows
    eval_limit      INTEGER,            -- --limit used (NULL = every document)
    partial         BOOLEAN NOT NULL DEFAULT false, -- chosen documents only (samples=...), never counts as complete
    n_samples       BIGINT,
    load_ids        VARCHAR[],          -- loads rows holding the labels of this run
    lm_eval_version VARCHAR,
    code_version    VARCHAR,
    details         JSON,               -- eval args, staging files, timings, recovered-from-staging flag
    started_at      TIMESTAMP NOT NULL,
    seconds         DOUBLE
);
