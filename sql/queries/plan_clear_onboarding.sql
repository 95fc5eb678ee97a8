-- plan_clear_onboarding: forget a model's earlier onboarding plan before it is planned again (it has no labels:
-- the earlier evaluation never landed, so none of those pairs was answered).
DELETE FROM evaluation_plan WHERE model_id = $model_id AND reason = 'onboard';
