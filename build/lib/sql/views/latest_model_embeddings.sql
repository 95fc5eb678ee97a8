-- latest_model_embeddings: model embeddings of the latest completed training run, with model names.
CREATE OR REPLACE VIEW latest_model_embeddings AS
SELECT e.run_id, e.model_id, m.name AS model, e.embedding, e.source
FROM model_embeddings e
JOIN latest_training_run r USING (run_id)
JOIN models m USING (model_id);
