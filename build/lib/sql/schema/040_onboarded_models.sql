-- onboarded_models: one row per model placed in a trained run by `embedllm onboard` (its embedding fitted from
-- a few evaluated questions with the run's other weights frozen). The model's forecasts sit in
-- correctness_forecasts / benchmark_forecasts under the same run_id with source = 'onboarded'; the next
-- training run that includes the model's labels supersedes them (latest_* views follow the newest run).
CREATE TABLE IF NOT EXISTS onboarded_models (
    run_id            VARCHAR NOT NULL,     -- the training run the model was placed in
    model_id          INTEGER NOT NULL,
    created_at        TIMESTAMP NOT NULL,   -- UTC
    n_questions       INTEGER NOT NULL,     -- answers the fit used
    question_ids      VARCHAR[] NOT NULL,   -- the questions chosen (and evaluated) for the fit
    embedding         FLOAT[] NOT NULL,     -- the fitted model vector p (length = the run's dim)
    benchmark_offsets JSON,                 -- fitted per-benchmark logit offsets {benchmark: offset}
    n_bootstrap       INTEGER NOT NULL,
    suite             VARCHAR,              -- suite whose tasks were evaluated
    suite_questions   INTEGER,              -- questions of a full evaluation of those tasks (inference saved)
    eval_seconds      DOUBLE,               -- lm-eval time for the chosen questions
    fit_seconds       DOUBLE,
    details           JSON,                 -- selection settings, prior, code version
    PRIMARY KEY (run_id, model_id)
);
