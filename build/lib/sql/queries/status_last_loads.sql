-- status: the most recent loads (imports and evaluations), newest first. param: how many
SELECT strftime(l.started_at, '%Y-%m-%d %H:%M:%S') AS started_utc, l.kind, coalesce(m.name, '') AS model,
       coalesce(l.task, '') AS task, l.n_labels, l.n_new_questions, coalesce(l.label_rule, '') AS label_rule
FROM loads l LEFT JOIN models m USING (model_id)
ORDER BY l.started_at DESC LIMIT ?
