-- question_embeddings: sentence-transformer vectors of question prompts, one per (question, embedder).
-- The dimension depends on the embedder (384 for all-MiniLM-L6-v2, 768 for all-mpnet-base-v2), so the column
-- is a FLOAT list; every vector of one embedder has the same length (checked when written).
CREATE TABLE IF NOT EXISTS question_embeddings (
    question_id VARCHAR NOT NULL,
    embedder    VARCHAR NOT NULL,
    embedding   FLOAT[] NOT NULL,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (question_id, embedder)
);
