-- loads: one row per batch the loader committed (an lm-eval task result or an imported dataset): the
-- provenance every label points at. content_hash makes re-loading the same data a no-op.
CREATE TABLE IF NOT EXISTS loads (
    load_id          VARCHAR PRIMARY KEY,
    kind             VARCHAR NOT NULL,   -- lm-eval-import | embedllm-csv | evaluate
    source           VARCHAR,            -- file or directory the data came from
    content_hash     VARCHAR NOT NULL,
    model_id         INTEGER,            -- NULL for datasets that cover many models
    task             VARCHAR,
    task_version     VARCHAR,
    task_config_hash VARCHAR,
    lm_eval_version  VARCHAR,
    model_revision   VARCHAR,
    label_rule       VARCHAR,            -- e.g. acc, exact_match,flexible-extract, mc2>0.5
    aggregate_value  DOUBLE,             -- lm-eval's own aggregate for the metric of the label rule
    sample_mean      DOUBLE,             -- the mean of the per-sample values we loaded (must match)
    n_labels         BIGINT NOT NULL,
    n_new_questions  BIGINT NOT NULL,
    code_version     VARCHAR,
    details          JSON,
    started_at       TIMESTAMP NOT NULL,
    seconds          DOUBLE
);
