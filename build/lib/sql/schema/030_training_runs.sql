-- training_runs: one row per `embedllm train` (or flow) run. config holds the full EmbedLLMConfig plus the
-- preset, embedder, n_models, n_questions and code version; metrics holds the test-split figures (test_accuracy,
-- test_auc, test_log_loss, test_ece, route_accuracy, single_best_accuracy, oracle_accuracy, knn_test_accuracy,
-- train_seconds, ...). created_at is UTC. status: completed | failed.
CREATE TABLE IF NOT EXISTS training_runs (
    run_id          VARCHAR PRIMARY KEY,
    created_at      TIMESTAMP NOT NULL,
    preset          VARCHAR NOT NULL,
    embedder        VARCHAR NOT NULL,
    config          JSON NOT NULL,
    metrics         JSON,
    checkpoint_path VARCHAR,
    status          VARCHAR NOT NULL DEFAULT 'completed'
);
