-- latest_correctness_forecasts: correctness forecasts of the latest completed training run.
CREATE OR REPLACE VIEW latest_correctness_forecasts AS
SELECT f.run_id, f.model_id, f.question_id, f.p_correct, f.source
FROM correctness_forecasts f
JOIN latest_training_run r USING (run_id);
