"""EmbedLLM: compact embeddings of LLMs learned from which benchmark questions they answer correctly."""

__version__ = "0.1.0"
