-- import report: the loads rows just committed. param: list of load ids
SELECT l.load_id, coalesce(l.task, '') AS task, l.n_labels, l.n_new_questions, l.aggregate_value, l.sample_mean
FROM loads l WHERE list_contains(?, l.load_id)
