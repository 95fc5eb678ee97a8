-- train_unfinished_runs: runs written by `train` whose forecasts never committed (killed in between), and every
-- checkpoint path a run records; the next train deletes the former and any checkpoint file the latter lacks.
SELECT run_id, checkpoint_path, status
FROM training_runs;
