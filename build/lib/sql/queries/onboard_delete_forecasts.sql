-- onboard_delete_forecasts: drop one model's onboarded correctness forecasts in one run before writing them again.
DELETE FROM correctness_forecasts WHERE run_id = $run_id AND model_id = $model_id AND source = 'onboarded';
