-- onboard_delete_forecasts: drop one model's correctness forecasts in one run before writing its onboarded ones
-- (again). Only a model the run was not trained on, or whose trained vector a drift event made stale, gets here.
DELETE FROM correctness_forecasts WHERE run_id = $run_id AND model_id = $model_id;
