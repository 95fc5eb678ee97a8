"""CLI commands for this area (filled in by its issue)."""

from embedllm.cli.app import app  # noqa: F401
