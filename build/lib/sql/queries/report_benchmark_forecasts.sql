-- report_benchmark_forecasts: a run's forecast and observed accuracy per model and benchmark, with names.
SELECT m.name AS model, f.benchmark, f.predicted_accuracy, f.observed_accuracy, f.n_observed, f.source
FROM benchmark_forecasts f
JOIN models m USING (model_id)
WHERE f.run_id = ?
ORDER BY f.benchmark, m.name;
