-- train_current_run: the latest completed training run with this preset (and embedder, when given), with the
-- latest load (UTC) and the latest embedding run that added vectors for its embedder, so a train that would
-- learn nothing new is skipped (tasks/train.py `current_training`).
-- A load of a model that onboarding placed in the run afterwards is accounted for by that placement (the
-- onboarded model's answers are in the run's forecasts without retraining), so it does not count here; the next
-- training run, made for any other new label or embedding, absorbs it.
SELECT t.run_id, t.created_at, t.preset, t.embedder, CAST(t.config AS VARCHAR) AS config,
       CAST(t.metrics AS VARCHAR) AS metrics, t.checkpoint_path,
       (SELECT max(l.started_at) FROM loads l
        WHERE NOT EXISTS (SELECT 1 FROM onboarded_models o
                          WHERE o.run_id = t.run_id AND o.model_id = l.model_id AND l.started_at <= o.created_at))
           AS latest_load,
       (SELECT max(e.created_at) FROM embedding_runs e
        WHERE e.embedder = t.embedder AND e.n_questions > 0) AS latest_embedding
FROM training_runs t
WHERE t.status = 'completed' AND t.preset = $preset AND ($embedder IS NULL OR t.embedder = $embedder)
ORDER BY t.created_at DESC, t.run_id DESC
LIMIT 1;
