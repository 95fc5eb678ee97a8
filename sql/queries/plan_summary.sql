-- plan_summary: per model with an evaluation plan, the planned pairs by reason and how many have a label.
SELECT m.name AS model, p.reason, count(*) AS n_planned,
       count(c.question_id) AS n_labelled
FROM evaluation_plan p
JOIN models m USING (model_id)
LEFT JOIN correctness c ON c.model_id = p.model_id AND c.question_id = p.question_id
GROUP BY m.name, p.reason
ORDER BY m.name, p.reason;
