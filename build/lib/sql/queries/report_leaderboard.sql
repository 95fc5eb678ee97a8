-- report_leaderboard: observed accuracy of every model on every benchmark (the leaderboard view).
SELECT model, benchmark, accuracy, n_questions
FROM leaderboard;
