-- latest_benchmark_forecasts: benchmark forecasts of the latest completed training run, with model names.
-- predicted_low / predicted_high: the 90 % interval of an onboarded model's forecast (NULL for trained models).
CREATE OR REPLACE VIEW latest_benchmark_forecasts AS
SELECT f.run_id, f.model_id, m.name AS model, f.benchmark, f.predicted_accuracy, f.observed_accuracy,
       f.n_observed, f.source, f.predicted_low, f.predicted_high
FROM benchmark_forecasts f
JOIN latest_training_run r USING (run_id)
JOIN models m USING (model_id);
