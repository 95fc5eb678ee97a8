-- validate_questions: the question fields training and embedding rely on.
SELECT question_id, task, benchmark, prompt, split
FROM questions;
