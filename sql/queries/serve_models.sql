-- serve_models: run $run_id's models with their registry fields (endpoint, cost, activity) and per-benchmark
-- forecast and observed accuracy as a list of structs.
SELECT m.model_id, m.name, m.revision, m.backend, m.model_args::VARCHAR AS model_args, m.base_url,
       m.api_key_env, m.cost_per_mtok, m.tags, m.active, m.source, e.source AS vector_source,
       list({'benchmark': f.benchmark, 'predicted_accuracy': f.predicted_accuracy,
             'observed_accuracy': f.observed_accuracy, 'n_observed': f.n_observed}
            ORDER BY f.benchmark) FILTER (WHERE f.benchmark IS NOT NULL) AS benchmarks
FROM model_embeddings e
JOIN models m USING (model_id)
LEFT JOIN benchmark_forecasts f ON f.run_id = e.run_id AND f.model_id = e.model_id
WHERE e.run_id = $run_id
GROUP BY ALL
ORDER BY m.model_id;
