-- latest_benchmark_forecasts: benchmark forecasts of the latest completed training run, with model names.
CREATE OR REPLACE VIEW latest_benchmark_forecasts AS
SELECT f.run_id, f.model_id, m.name AS model, f.benchmark, f.predicted_accuracy, f.observed_accuracy,
       f.n_observed, f.source
FROM benchmark_forecasts f
JOIN latest_training_run r USING (run_id)
JOIN models m USING (model_id);
