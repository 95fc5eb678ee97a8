-- drift_delete_plan: delete a drifted model's evaluation plan ($model_id), so the plan step onboards it again.
DELETE FROM evaluation_plan WHERE model_id = $model_id;
