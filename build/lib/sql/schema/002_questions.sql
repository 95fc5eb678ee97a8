-- questions: one row per benchmark question. question_id is stable: derived from the lm-eval task name and
-- lm-eval's doc_hash (sha256 of the doc); split comes from a hash of question_id (80/10/10) unless an imported
-- dataset brings its own split.
CREATE TABLE IF NOT EXISTS questions (
    question_id VARCHAR PRIMARY KEY,
    benchmark   VARCHAR NOT NULL,   -- the benchmark (lm-eval group or task, or the dataset's category)
    task        VARCHAR NOT NULL,   -- the lm-eval task (sub-task) it came from
    doc_id      INTEGER,            -- lm-eval doc index within the task (used to re-evaluate chosen docs)
    doc_hash    VARCHAR,
    prompt      VARCHAR NOT NULL,   -- question text (few-shot examples stripped)
    target      VARCHAR,
    n_choices   INTEGER,            -- number of options for multiple-choice questions, NULL otherwise
    output_type VARCHAR,            -- lm-eval output type: multiple_choice | generate_until | ...
    split       VARCHAR NOT NULL CHECK (split IN ('train', 'val', 'test')),
    source      VARCHAR NOT NULL,   -- lm-eval | embedllm-csv
    added_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);
