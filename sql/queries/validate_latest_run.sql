-- validate_latest_run: the latest validation run (its suite and config from the summary) and the latest change to
-- what it checks: the latest load or evaluation plan (both UTC), so a validation with nothing new to check is
-- skipped (tasks/validate.py `current_validation`). A new plan counts: its pairs may lack labels.
SELECT v.run_id, v.created_at, v.success, v.n_expectations, v.n_failed, v.n_errors, v.data_docs_path,
       json_extract_string(v.summary, '$.suite') AS suite,
       json_extract_string(v.summary, '$.config_path') AS config_path,
       greatest((SELECT max(started_at) FROM loads), (SELECT max(planned_at) FROM evaluation_plan)) AS latest_load
FROM validation_runs v
ORDER BY v.created_at DESC, v.run_id DESC
LIMIT 1;
