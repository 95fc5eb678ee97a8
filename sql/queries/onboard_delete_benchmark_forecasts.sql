-- onboard_delete_benchmark_forecasts: drop one model's benchmark forecasts in one run before writing its
-- onboarded ones (a trained model's only when a drift event made its vector stale).
DELETE FROM benchmark_forecasts WHERE run_id = $run_id AND model_id = $model_id;
