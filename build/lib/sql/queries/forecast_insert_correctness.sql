-- forecast_insert_correctness: bulk insert from the registered Arrow table _forecasts.
INSERT INTO correctness_forecasts (run_id, model_id, question_id, p_correct, source)
SELECT run_id, model_id, question_id, p_correct, source FROM _forecasts;
