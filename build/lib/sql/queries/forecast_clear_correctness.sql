-- forecast_clear_correctness: remove a run's trained correctness forecasts before writing them again.
DELETE FROM correctness_forecasts WHERE run_id = $run_id AND source = 'trained';
