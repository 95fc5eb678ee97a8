-- embedding_runs.backend: what computed the vectors (torch, onnx, onnx-int8; embedllm/embedders.py pick_backend).
ALTER TABLE embedding_runs ADD COLUMN IF NOT EXISTS backend VARCHAR;
