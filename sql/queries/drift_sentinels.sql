-- drift_sentinels: the warehouse's sentinel questions, in the order they were chosen.
SELECT question_id, benchmark, task, doc_id, position FROM drift_sentinels ORDER BY position;
