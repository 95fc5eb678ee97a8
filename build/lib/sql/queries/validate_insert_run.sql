-- validate_insert_run: record one validation run.
INSERT INTO validation_runs (run_id, created_at, success, n_expectations, n_failed, n_errors, summary, data_docs_path)
VALUES ($run_id, $created_at, $success, $n_expectations, $n_failed, $n_errors, $summary, $data_docs_path);
