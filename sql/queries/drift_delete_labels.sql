-- drift_delete_labels: delete every label of a drifted model ($model_id); their loads rows stay as history.
DELETE FROM correctness WHERE model_id = $model_id;
