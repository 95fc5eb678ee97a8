-- validation_runs: one row per `embedllm validate` (tasks/validate.py). Training refuses to start unless the latest
-- row is a success newer than the latest load. created_at is UTC, like loads.started_at.
-- summary holds every expectation's outcome: {"suite", "config_path", "seconds", "frames", "checks": [{"check",
-- "frame", "expectation", "column", "status" (pass|fail|error), "unexpected_count", "examples", ...}]}.
CREATE TABLE IF NOT EXISTS validation_runs (
    run_id          VARCHAR PRIMARY KEY,
    created_at      TIMESTAMP NOT NULL,
    success         BOOLEAN NOT NULL,
    n_expectations  INTEGER NOT NULL,
    n_failed        INTEGER NOT NULL,   -- expectations the data did not meet
    n_errors        INTEGER NOT NULL,   -- expectations whose metric raised inside Great Expectations
    summary         JSON,
    data_docs_path  VARCHAR             -- index.html of the Great Expectations Data Docs written for this run
);
