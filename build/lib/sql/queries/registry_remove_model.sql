-- Retire a model: it is no longer evaluated, its labels, loads and eval runs stay (parameter: name).
UPDATE models SET active = false, removed_at = current_timestamp WHERE name = ? AND active;
