-- models.eval_args: evaluation options of a registry entry that are not model constructor arguments, so one set
-- of weights can appear as several prompting variants (apply_chat_template, num_fewshot, system_instruction).
ALTER TABLE models ADD COLUMN IF NOT EXISTS eval_args JSON;
