-- status: the latest training runs with their headline test metrics
SELECT strftime(created_at, '%Y-%m-%d %H:%M:%S') AS created_utc, preset, embedder, status,
       round(try_cast(json_extract(metrics, '$.test_accuracy') AS DOUBLE), 4)  AS test_accuracy,
       round(try_cast(json_extract(metrics, '$.route_accuracy') AS DOUBLE), 4) AS route_accuracy
FROM training_runs ORDER BY created_at DESC LIMIT 3
