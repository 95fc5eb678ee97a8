-- benchmark_forecasts: per run, model and benchmark: predicted accuracy (mean forecast over ALL the benchmark's
-- questions) and observed accuracy (mean label over the questions the model was evaluated on; NULL if none).
CREATE TABLE IF NOT EXISTS benchmark_forecasts (
    run_id             VARCHAR NOT NULL,
    model_id           INTEGER NOT NULL,
    benchmark          VARCHAR NOT NULL,
    predicted_accuracy DOUBLE NOT NULL,
    observed_accuracy  DOUBLE,
    n_observed         INTEGER NOT NULL DEFAULT 0,
    source             VARCHAR NOT NULL DEFAULT 'trained',
    PRIMARY KEY (run_id, model_id, benchmark)
);
