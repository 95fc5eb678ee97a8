-- How many registry models are active (evaluated by the next run).
SELECT count(*) AS n FROM models WHERE active AND source = 'registry';
