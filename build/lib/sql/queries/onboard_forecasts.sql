-- onboard_forecasts: the onboarded benchmark forecasts (with their bootstrap interval) of one model in one run.
SELECT f.benchmark, f.predicted_accuracy, f.predicted_low, f.predicted_high, f.observed_accuracy, f.n_observed
FROM benchmark_forecasts f
JOIN models m USING (model_id)
WHERE f.run_id = $run_id AND m.name = $model AND f.source = 'onboarded'
ORDER BY f.benchmark;
