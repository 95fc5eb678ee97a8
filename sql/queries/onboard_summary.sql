-- onboard_summary: the models placed by onboarding in the latest completed training run: how many answers the
-- fit used, how many questions the model was asked (its evaluation plan), its full_evaluation field (NULL: the
-- pipeline's parameter), and how sure the forecasts are (the 90 % interval width of its benchmark forecasts:
-- mean and widest, and the benchmark of the widest).
SELECT m.name AS model, o.run_id, o.n_questions AS n_answers,
       (SELECT count(*) FROM evaluation_plan p WHERE p.model_id = o.model_id) AS n_planned,
       coalesce(m.full_evaluation, 'pipeline default') AS full_evaluation,
       round(avg(f.predicted_accuracy), 4) AS mean_forecast,
       round(avg(f.predicted_high - f.predicted_low), 4) AS mean_interval_width,
       round(max(f.predicted_high - f.predicted_low), 4) AS max_interval_width,
       arg_max(f.benchmark, f.predicted_high - f.predicted_low) AS least_sure_benchmark
FROM onboarded_models o
JOIN latest_training_run r USING (run_id)
JOIN models m ON m.model_id = o.model_id
LEFT JOIN benchmark_forecasts f ON f.run_id = o.run_id AND f.model_id = o.model_id
GROUP BY m.name, o.run_id, o.n_questions, o.model_id, m.full_evaluation, o.created_at
ORDER BY o.created_at, m.name;
