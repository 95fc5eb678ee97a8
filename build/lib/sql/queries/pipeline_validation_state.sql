-- pipeline_validation_state: the latest validation run and the latest load (both UTC), so the pipeline can
-- skip validation when nothing was loaded since a successful run.
SELECT v.run_id, v.created_at, v.success, v.n_expectations, v.n_failed, v.n_errors, v.data_docs_path,
       (SELECT max(started_at) FROM loads) AS latest_load
FROM validation_runs v
ORDER BY v.created_at DESC, v.run_id DESC
LIMIT 1;
