-- Interval of a benchmark forecast: the 5 % and 95 % bootstrap quantiles of predicted_accuracy. Filled for
-- onboarded models (source = 'onboarded'); NULL for trained ones.
ALTER TABLE benchmark_forecasts ADD COLUMN IF NOT EXISTS predicted_low DOUBLE;
ALTER TABLE benchmark_forecasts ADD COLUMN IF NOT EXISTS predicted_high DOUBLE;
