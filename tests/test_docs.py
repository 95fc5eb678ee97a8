"""Docs that cannot go stale: every CLI command is in the README, and every command the README shows exists."""

from __future__ import annotations

import re
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def command_paths() -> set[str]:
    """Return every `embedllm` command path, e.g. {'run', 'models add', 'import lm-eval', ...}."""
    from embedllm.cli import app

    paths: set[str] = set()

    def walk(command, prefix: list[str]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, [*prefix, name])
        else:
            paths.add(" ".join(prefix))

    walk(typer.main.get_command(app), [])
    return paths


def readme_commands() -> set[str]:
    """Return the `embedllm ...` command paths the README's code blocks and tables use."""
    words = re.findall(r"embedllm ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)", README)
    return {w for w in words}


def test_every_cli_command_is_documented_in_the_readme():
    missing = sorted(p for p in command_paths() if f"embedllm {p}" not in README)
    assert missing == [], f"commands missing from README.md: {missing}"


def test_every_command_the_readme_shows_exists():
    paths = command_paths()
    groups = {p.split()[0] for p in paths}
    unknown = []
    for used in readme_commands():
        first = used.split()[0]
        if first not in groups:
            unknown.append(used)
        elif first not in paths and used not in paths and not any(p.startswith(used) for p in paths):
            unknown.append(used)
    assert unknown == [], f"README.md shows commands that do not exist: {sorted(unknown)}"
