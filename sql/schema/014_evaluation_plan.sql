-- The evaluation policy and the evaluation plan (issue 13: new models are onboarded first; sparse matrices are a
-- declared state).
-- models.onboard_questions / models.full_evaluation: a registry entry's own policy; NULL = the pipeline's
-- parameter of the same name. onboard_questions: questions a new model is evaluated on before it is placed in the
-- latest training run (0 = no onboarding: evaluate it fully); full_evaluation: never | nightly | budget:N.
ALTER TABLE models ADD COLUMN IF NOT EXISTS onboard_questions INTEGER;
ALTER TABLE models ADD COLUMN IF NOT EXISTS full_evaluation VARCHAR;
-- evaluation_plan: the (model, question) pairs a model was asked to answer when it is NOT evaluated on the whole
-- suite: chosen for onboarding (reason 'onboard'), a budget of later questions ('budget'), or what an lm-eval
-- import held ('import'). Written when the plan is made (before lm-eval runs), so a label missing from the plan
-- is a gap validation reports. A model with plan rows and no full (non-partial) evaluate run is checked against
-- its plan; every other active model against every question of the suite.
CREATE TABLE IF NOT EXISTS evaluation_plan (
    model_id    INTEGER NOT NULL,
    question_id VARCHAR NOT NULL,
    reason      VARCHAR NOT NULL CHECK (reason IN ('onboard', 'budget', 'import')),
    run_id      VARCHAR,               -- the training run onboarding placed the model in (reason 'onboard')
    planned_at  TIMESTAMP NOT NULL,    -- UTC
    PRIMARY KEY (model_id, question_id)
);
