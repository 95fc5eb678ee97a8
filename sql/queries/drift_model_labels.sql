-- drift_model_labels: how many labels model $model_id has.
SELECT count(*) AS n FROM correctness WHERE model_id = $model_id;
