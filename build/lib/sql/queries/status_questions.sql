-- status: questions per benchmark and split, with how many labels they hold
SELECT q.benchmark,
       count(*) FILTER (WHERE q.split = 'train') AS train,
       count(*) FILTER (WHERE q.split = 'val')   AS val,
       count(*) FILTER (WHERE q.split = 'test')  AS test,
       count(*)                                  AS questions,
       coalesce(sum(l.n), 0)::BIGINT             AS labels
FROM questions q
LEFT JOIN (SELECT question_id, count(*) AS n FROM correctness GROUP BY question_id) l USING (question_id)
GROUP BY q.benchmark ORDER BY q.benchmark
