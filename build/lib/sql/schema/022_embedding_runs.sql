-- embedding_runs: one row per `embedllm embed` call that encoded questions (tasks/embed.py): provenance and
-- throughput. embedder is the canonical name stored in question_embeddings.embedder; model_path where it loaded from.
CREATE TABLE IF NOT EXISTS embedding_runs (
    run_id           VARCHAR PRIMARY KEY,
    embedder         VARCHAR NOT NULL,
    model_path       VARCHAR,
    dimension        INTEGER,
    n_questions      BIGINT NOT NULL,   -- questions encoded by this run
    batch_size       INTEGER,
    seconds          DOUBLE NOT NULL,   -- encoding + storing, model load excluded (see load_seconds)
    load_seconds     DOUBLE,
    questions_per_s  DOUBLE,
    device           VARCHAR,
    code_version     VARCHAR,
    created_at       TIMESTAMP NOT NULL
);
