-- onboard_delete_benchmark_forecasts: drop one model's onboarded benchmark forecasts in one run.
DELETE FROM benchmark_forecasts WHERE run_id = $run_id AND model_id = $model_id AND source = 'onboarded';
