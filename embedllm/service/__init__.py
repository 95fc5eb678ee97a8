"""The routing service behind `embedllm serve` (an edge, like the CLI): state, HTTP app, OpenAI proxy."""
