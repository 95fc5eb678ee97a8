-- train_latest_load: when the most recent load was committed (UTC) and how many labels exist.
SELECT (SELECT max(started_at) FROM loads) AS latest_load,
       (SELECT count(*) FROM correctness) AS n_labels;
