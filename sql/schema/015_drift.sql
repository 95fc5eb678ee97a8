-- Drift of a model behind an unchanged registry entry (issue 13; the maths is embedllm/drift.py, the stage
-- tasks/drift.py).
-- drift_sentinels: the fixed set of questions every movable model is re-asked each pipeline run, chosen once per
-- warehouse (spread round-robin over benchmarks, in a stable hash order) and never changed afterwards.
CREATE TABLE IF NOT EXISTS drift_sentinels (
    question_id VARCHAR PRIMARY KEY,
    benchmark   VARCHAR NOT NULL,
    task        VARCHAR NOT NULL,
    doc_id      BIGINT NOT NULL,
    position    INTEGER NOT NULL,      -- order of the choice (1 = first)
    chosen_at   TIMESTAMP NOT NULL     -- UTC
);
-- drift_checks: one row per (pipeline run, movable model) re-ask: how many sentinel answers changed and the
-- verdict, drifted or not. The fresh answers are here (details), never in correctness.
CREATE SEQUENCE IF NOT EXISTS drift_checks_seq START 1;
CREATE TABLE IF NOT EXISTS drift_checks (
    check_id      BIGINT PRIMARY KEY DEFAULT nextval('drift_checks_seq'),
    model_id      INTEGER NOT NULL,
    checked_at    TIMESTAMP NOT NULL,  -- UTC
    status        VARCHAR NOT NULL CHECK (status IN ('compared', 'failed')),
    n             INTEGER NOT NULL,    -- sentinel questions compared (stored label and fresh answer)
    disagreements INTEGER NOT NULL,
    p_value       DOUBLE,
    drifted       BOOLEAN NOT NULL,
    error         VARCHAR,             -- one line, for a re-ask that failed (model did not load, endpoint down)
    details       JSON                 -- revision, backend, fresh and stored labels of the changed questions
);
-- drift_events: a model that no longer answers like its labels say: its sentinel answers disagree beyond what
-- numerical noise allows (reason 'sentinels'), or its registry revision changed (reason 'revision', no test).
-- The model's labels and evaluation plan are deleted in the same transaction (their provenance stays in loads
-- and eval_runs; evaluate runs and loads started before detected_at no longer count for planning or
-- validation), so the plan onboards it again.
CREATE SEQUENCE IF NOT EXISTS drift_events_seq START 1;
CREATE TABLE IF NOT EXISTS drift_events (
    event_id        BIGINT PRIMARY KEY DEFAULT nextval('drift_events_seq'),
    model_id        INTEGER NOT NULL,
    detected_at     TIMESTAMP NOT NULL,  -- UTC, the pipeline run's drift stage
    reason          VARCHAR NOT NULL CHECK (reason IN ('sentinels', 'revision')),
    n               INTEGER,             -- sentinels compared (NULL for reason 'revision')
    disagreements   INTEGER,
    p_value         DOUBLE,
    noise           DOUBLE,
    alpha           DOUBLE,
    history_id      BIGINT,              -- the models_history row of a revision change (reason 'revision')
    labels_removed  BIGINT NOT NULL,     -- labels deleted from correctness
    details         JSON                 -- previous and new revision, the changed questions, the check
);
