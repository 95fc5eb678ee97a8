-- correctness: the models x questions matrix, one current label per (model, question), with the load that
-- produced it. A later load of the same pair replaces the label.
CREATE TABLE IF NOT EXISTS correctness (
    model_id    INTEGER NOT NULL,
    question_id VARCHAR NOT NULL,
    label       TINYINT NOT NULL CHECK (label IN (0, 1)),
    value       DOUBLE,            -- the raw per-sample metric the label came from (acc, exact_match, mc2 ...)
    load_id     VARCHAR NOT NULL,
    PRIMARY KEY (model_id, question_id)
);
