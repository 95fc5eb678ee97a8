"""Run the embedllm CLI in-process through its real error edge (shared by the CLI tests)."""

import sys


def run_cli(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    """Return (exit code, stdout, stderr) of `embedllm ARGS` run in-process through the real error edge."""
    from embedllm.cli import main

    monkeypatch.setattr(sys, "argv", ["embedllm", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err
