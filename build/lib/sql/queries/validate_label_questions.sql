-- validate_label_questions: every question id the labels reference, how many labels point at it, and whether
-- the questions table knows it (known = false: labels of a question that has no prompt, benchmark or split).
WITH referenced AS (
    SELECT question_id, count(*) AS n_labels
    FROM correctness
    GROUP BY question_id
)
SELECT r.question_id, r.n_labels, (q.question_id IS NOT NULL) AS known
FROM referenced r
LEFT JOIN questions q USING (question_id)
ORDER BY r.question_id;
