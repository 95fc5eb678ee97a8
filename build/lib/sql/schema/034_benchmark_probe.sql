-- benchmark_probe: the paper's probe. For each benchmark B, model embeddings learned WITHOUT B's labels feed a
-- ridge regression predicting each model's observed accuracy on B (leave-one-model-out); pearson_r and mae
-- compare those held-out predictions with the observed accuracies over n_models models.
CREATE TABLE IF NOT EXISTS benchmark_probe (
    run_id     VARCHAR NOT NULL,
    benchmark  VARCHAR NOT NULL,
    pearson_r  DOUBLE,
    mae        DOUBLE,
    n_models   INTEGER NOT NULL,
    details    JSON,
    PRIMARY KEY (run_id, benchmark)
);
