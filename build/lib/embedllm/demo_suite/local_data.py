"""Load a demo task's JSONL from this folder, whatever the working directory or clone location.

lm-eval hands `dataset_kwargs` to `datasets.load_dataset`, which resolves relative `data_files` against the
current working directory. The task YAMLs here name their data relative to this folder and use
`custom_dataset: !function local_data.load_beside`, which lm-eval calls with those same `dataset_kwargs`.
Copy this file next to your own task YAMLs to get the same behaviour.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TASK_NAMES = tuple(sorted(p.stem for p in HERE.glob("*.yaml") if not p.stem.startswith("_")))


def resolve_data_files(data_files: dict[str, str]) -> dict[str, str]:
    """Return data_files with each relative path made absolute against this folder."""
    return {split: str(path if Path(path).is_absolute() else HERE / path) for split, path in data_files.items()}


def load_beside(data_files: dict[str, str], **_metadata: Any):
    """Return the DatasetDict of the JSONL files named relative to this folder (extra task metadata ignored)."""
    import datasets

    return datasets.load_dataset("json", data_files=resolve_data_files(data_files))


class _QuietCustomDatasetNotice(logging.Filter):
    """Drop lm-eval's per-task advice about `custom_dataset` kwargs for the tasks of this folder only."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Return False for the advice line about one of our tasks, True for everything else."""
        message = record.getMessage()
        return not (message.startswith(TASK_NAMES) and "Custom kwargs can be passed" in message)


_task_logger = logging.getLogger("lm_eval.api.task")
if not any(type(f).__name__ == _QuietCustomDatasetNotice.__name__ for f in _task_logger.filters):
    _task_logger.addFilter(_QuietCustomDatasetNotice())
