-- forecast_clear_benchmarks: remove a run's trained benchmark forecasts before writing them again.
DELETE FROM benchmark_forecasts WHERE run_id = $run_id AND source = 'trained';
