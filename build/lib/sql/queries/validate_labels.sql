-- validate_labels: every label row, only the columns the label checks read (4M rows at paper scale).
SELECT model_id, question_id, label
FROM correctness;
