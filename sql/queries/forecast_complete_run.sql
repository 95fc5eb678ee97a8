-- forecast_complete_run: a run is completed (visible to the latest_* views) in the transaction that writes its
-- forecasts and probe.
UPDATE training_runs SET status = 'completed' WHERE run_id = $run_id;
