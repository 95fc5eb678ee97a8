-- correctness_forecasts: P(model answers question correctly) from a run, for EVERY model x question with an
-- embedding (evaluated or not): ~4M rows for 112 models x 36k questions, bulk-inserted from Arrow.
-- No primary key on purpose (an index over millions of rows would slow every insert); writers delete a
-- (run_id, model_id) slice before inserting it again. source: trained | onboarded.
CREATE TABLE IF NOT EXISTS correctness_forecasts (
    run_id      VARCHAR NOT NULL,
    model_id    INTEGER NOT NULL,
    question_id VARCHAR NOT NULL,
    p_correct   FLOAT NOT NULL,
    source      VARCHAR NOT NULL DEFAULT 'trained'
);
