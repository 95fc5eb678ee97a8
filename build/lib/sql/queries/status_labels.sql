-- status: size of the correctness matrix and how full it is
SELECT count(*)                                        AS labels,
       count(DISTINCT model_id)                        AS models,
       count(DISTINCT question_id)                     AS questions,
       round(avg(label), 4)                            AS mean_label,
       round(count(*) / nullif(count(DISTINCT model_id) * count(DISTINCT question_id), 0), 4) AS filled
FROM correctness
