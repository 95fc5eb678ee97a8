-- forecast_insert_probe: one benchmark's probe result for a run.
INSERT OR REPLACE INTO benchmark_probe (run_id, benchmark, pearson_r, mae, n_models, details)
VALUES ($run_id, $benchmark, $pearson_r, $mae, $n_models, $details);
