-- model_embeddings: the learned vector p_m of every model in a training run (length = the run's dim).
-- source: trained (by the run) | onboarded (fitted later for a new model with the run's other weights frozen).
CREATE TABLE IF NOT EXISTS model_embeddings (
    run_id    VARCHAR NOT NULL,
    model_id  INTEGER NOT NULL,
    embedding FLOAT[] NOT NULL,
    source    VARCHAR NOT NULL DEFAULT 'trained',
    PRIMARY KEY (run_id, model_id)
);
