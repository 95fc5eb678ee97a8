-- status: models by where they came from and whether they are active
SELECT source, count(*) FILTER (WHERE active) AS active, count(*) FILTER (WHERE NOT active) AS removed
FROM models GROUP BY source ORDER BY source
