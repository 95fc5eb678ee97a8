-- forecast_count_benchmarks: how many benchmark forecasts run $run_id has.
SELECT count(*) AS n FROM benchmark_forecasts WHERE run_id = $run_id;
