-- pipeline_training_state: the latest completed training run with this preset (and embedder, when given), the
-- latest load (UTC) and how many forecasts the run wrote, so the pipeline can skip training when nothing is new.
SELECT t.run_id, t.created_at, t.preset, t.embedder,
       (SELECT max(started_at) FROM loads) AS latest_load,
       (SELECT count(*) FROM benchmark_forecasts f WHERE f.run_id = t.run_id) AS n_benchmark_forecasts
FROM training_runs t
WHERE t.status = 'completed' AND t.preset = $preset AND ($embedder IS NULL OR t.embedder = $embedder)
ORDER BY t.created_at DESC, t.run_id DESC
LIMIT 1;
