-- status: evaluate-stage attempts (eval_runs), counted by outcome, with the latest start
SELECT status, count(*) AS runs, count(DISTINCT model_name) AS models,
       strftime(max(started_at), '%Y-%m-%d %H:%M:%S') AS latest_utc
FROM eval_runs GROUP BY status ORDER BY status DESC
