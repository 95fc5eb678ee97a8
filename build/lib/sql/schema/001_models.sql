-- models: one row per LLM, registered by `embedllm models add` or created by an import.
-- Removing a model sets active = false and removed_at; its labels and history stay.
CREATE SEQUENCE IF NOT EXISTS models_id_seq START 1;
CREATE TABLE IF NOT EXISTS models (
    model_id          INTEGER PRIMARY KEY DEFAULT nextval('models_id_seq'),
    name              VARCHAR NOT NULL UNIQUE,      -- Hugging Face repo id, local path, or imported name
    revision          VARCHAR,                      -- HF revision / commit; NULL = default branch
    backend           VARCHAR NOT NULL DEFAULT 'hf', -- lm-eval model type: hf | vllm | local-completions
    model_args        JSON,                         -- extra lm-eval model_args as a JSON object
    gguf_file         VARCHAR,
    trust_remote_code BOOLEAN NOT NULL DEFAULT false,
    cost_per_mtok     DOUBLE,                       -- cost per million tokens, for cost-aware routing
    tags              VARCHAR[],
    family            VARCHAR,
    source            VARCHAR NOT NULL DEFAULT 'registry', -- registry | lm-eval-import | embedllm-csv
    active            BOOLEAN NOT NULL DEFAULT true,
    added_at          TIMESTAMP NOT NULL DEFAULT current_timestamp,
    removed_at        TIMESTAMP
);
