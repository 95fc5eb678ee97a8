-- onboard_questions: every question with an embedding from $embedder (what a run can forecast), with the lm-eval
-- task and doc index that let `embedllm onboard` evaluate exactly the chosen ones (doc_id NULL = not selectable).
SELECT q.question_id, q.benchmark, q.task, q.doc_id, e.embedding
FROM questions q
JOIN question_embeddings e ON e.question_id = q.question_id AND e.embedder = $embedder
ORDER BY q.question_id;
