-- report_benchmark_probe: a run's held-out-benchmark probe figures, one row per benchmark.
SELECT benchmark, pearson_r, mae, n_models
FROM benchmark_probe
WHERE run_id = ?
ORDER BY benchmark;
