-- train_current_run: the latest completed training run with this preset (and embedder, when given), with the
-- latest load (UTC) and the latest embedding run that added vectors for its embedder, so a train that would
-- learn nothing new is skipped (tasks/train.py `current_training`).
SELECT t.run_id, t.created_at, t.preset, t.embedder, CAST(t.config AS VARCHAR) AS config,
       CAST(t.metrics AS VARCHAR) AS metrics, t.checkpoint_path,
       (SELECT max(started_at) FROM loads) AS latest_load,
       (SELECT max(e.created_at) FROM embedding_runs e
        WHERE e.embedder = t.embedder AND e.n_questions > 0) AS latest_embedding
FROM training_runs t
WHERE t.status = 'completed' AND t.preset = $preset AND ($embedder IS NULL OR t.embedder = $embedder)
ORDER BY t.created_at DESC, t.run_id DESC
LIMIT 1;
