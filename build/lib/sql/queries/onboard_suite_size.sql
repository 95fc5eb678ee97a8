-- onboard_suite_size: how many questions a full evaluation of the tasks $tasks covers (the warehouse's count).
SELECT count(*) AS n_questions FROM questions WHERE list_contains($tasks, task);
