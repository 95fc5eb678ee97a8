"""The `embedllm` command line. Commands live in one module per area; this file builds the app and the error edge.

Every command takes --warehouse PATH (or EMBEDLLM_WAREHOUSE). Errors from inside are specific exceptions;
here they become one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import importlib
import sys

import typer

from embedllm.cli.app import app
from embedllm.errors import EmbedLLMError

# Each module registers its commands on `app` when imported.
COMMAND_MODULES = [
    "importing",
    "query",
    "models",
    "evaluate",
    "validate",
    "embed",
    "train",
    "route",
    "serve",
    "onboard",
    "report",
    "run",
]
for _name in COMMAND_MODULES:
    importlib.import_module(f"embedllm.cli.{_name}")


def main() -> None:
    """Run the CLI; turn EmbedLLMError into `error: <message>` and exit code 1."""
    try:
        # standalone_mode=False returns typer.Exit's code instead of exiting; pass it on.
        code = app(standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool):
            sys.exit(code)
    except EmbedLLMError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors (typer vendors click): show them as click would
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(getattr(exc, "exit_code", 2))
