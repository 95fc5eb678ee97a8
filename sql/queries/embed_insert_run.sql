-- embed_insert_run: record one embedding run, its backend and its throughput.
INSERT INTO embedding_runs (run_id, embedder, model_path, dimension, n_questions, batch_size, seconds, load_seconds,
                            questions_per_s, device, backend, code_version, created_at)
VALUES ($run_id, $embedder, $model_path, $dimension, $n_questions, $batch_size, $seconds, $load_seconds,
        $questions_per_s, $device, $backend, $code_version, $created_at);
