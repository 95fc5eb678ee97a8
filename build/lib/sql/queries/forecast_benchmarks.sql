-- forecast_benchmarks: per model and benchmark of run $run_id, the mean forecast over ALL the benchmark's
-- questions (predicted) and the mean label over the questions the model was evaluated on (observed).
INSERT OR REPLACE INTO benchmark_forecasts
    (run_id, model_id, benchmark, predicted_accuracy, observed_accuracy, n_observed, source)
SELECT f.run_id, f.model_id, q.benchmark,
       avg(f.p_correct)::DOUBLE   AS predicted_accuracy,
       avg(c.label)::DOUBLE       AS observed_accuracy,
       count(c.label)::INTEGER    AS n_observed,
       'trained'                  AS source
FROM correctness_forecasts f
JOIN questions q ON q.question_id = f.question_id
LEFT JOIN correctness c ON c.model_id = f.model_id AND c.question_id = f.question_id
WHERE f.run_id = $run_id AND f.source = 'trained'
GROUP BY f.run_id, f.model_id, q.benchmark;
