-- train_insert_run: record one training run.
INSERT OR REPLACE INTO training_runs (run_id, created_at, preset, embedder, config, metrics, checkpoint_path, status)
VALUES ($run_id, $created_at, $preset, $embedder, $config, $metrics, $checkpoint_path, $status);
