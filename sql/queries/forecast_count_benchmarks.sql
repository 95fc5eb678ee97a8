-- forecast_count_benchmarks: how many benchmark forecasts and probe results run $run_id has.
SELECT (SELECT count(*) FROM benchmark_forecasts WHERE run_id = $run_id) AS n,
       (SELECT count(*) FROM benchmark_probe WHERE run_id = $run_id) AS n_probe;
