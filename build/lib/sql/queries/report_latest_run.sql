-- report_latest_run: the id of the latest completed training run (empty when there is none).
SELECT run_id FROM latest_training_run;
