-- onboard_model: a model of the registry by name (id, whether active, where it came from).
SELECT model_id, name, active, source
FROM models
WHERE name = $model;
