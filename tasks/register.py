"""Register stage: the model registry in the warehouse (add, update, remove, list) and the registry-file sync.

What an entry says and how it is validated is embedllm/registry.py (no SQL); this module reads and writes the
`models` table with named queries, records every change in `models_history`, and holds the run lock while it
writes. `sync_registry(db, FILE)` makes the warehouse say what the file says: new entries are added, changed ones
updated (a changed revision is recorded), entries the file managed and no longer lists are deactivated (their
labels and history stay). Entries registered ad hoc with `embedllm models add` are left alone by a sync.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

import warehouse
from embedllm import registry
from embedllm.common import dumps
from embedllm.errors import ConfigError
from embedllm.registry import ModelEntry
from tasks import stage
from tasks.stage import StageReport


@dataclass(frozen=True)
class Change:
    """What a write did to one entry: added, updated (which fields), reactivated, deactivated or unchanged."""

    name: str
    change: str
    fields: tuple[str, ...] = ()
    previous_revision: str | None = None
    revision: str | None = None

    def text(self) -> str:
        """Return `name` or `name (revision a -> b)` for a report line."""
        if "revision" in self.fields:
            return f"{self.name} (revision {self.previous_revision} -> {self.revision})"
        return f"{self.name} ({', '.join(self.fields)})" if self.fields else self.name


@dataclass
class SyncReport:
    """What syncing a registry file changed, per entry, and the stage report."""

    path: str
    changes: list[Change] = field(default_factory=list)
    report: StageReport = field(default_factory=lambda: StageReport("register"))

    def of(self, kind: str) -> list[Change]:
        """Return the changes of one kind (added, updated, reactivated, deactivated, unchanged)."""
        return [c for c in self.changes if c.change == kind]

    def line(self) -> str:
        """Return one line: `models.yaml: 1 added (a), 1 updated (b (revision x -> y)), 2 unchanged`."""
        parts = []
        for kind in ("added", "updated", "reactivated", "deactivated"):
            items = self.of(kind)
            if items:
                parts.append(f"{len(items)} {kind} ({', '.join(c.text() for c in items)})")
        parts.append(f"{len(self.of('unchanged'))} unchanged")
        return f"{Path(self.path).name}: " + ", ".join(parts)


# ------------------------------------------------------------------------------------------------ reading


def _rows(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Return every models row as a dict."""
    return warehouse.query(con, "registry_list_models").to_dicts()


def list_models(
    db: str | Path, *, include_removed: bool = False, include_imported: bool = False
) -> list[ModelEntry]:
    """Return registered models (active ones unless include_removed; imported-only names if include_imported)."""
    with stage.session(db) as con:
        rows = _rows(con)
    return [
        registry.entry_from_row(r)
        for r in rows
        if (include_removed or r["active"]) and (include_imported or r["source"] == "registry")
    ]


def get_model(db: str | Path, name: str) -> ModelEntry:
    """Return the entry named NAME (a registered name; a local path is matched after resolving it)."""
    with stage.session(db) as con:
        return registry.entry_from_row(registry.find_row(_rows(con), name))


def history(db: str | Path, name: str | None = None) -> list[dict[str, Any]]:
    """Return the registry's change history (of one model, or all), oldest first."""
    with stage.session(db) as con:
        return warehouse.query(con, "registry_history", {"name": name}).to_dicts()


# ------------------------------------------------------------------------------------------------ writing


def changed_fields(have: ModelEntry, want: ModelEntry) -> tuple[str, ...]:
    """Return the settings that differ between a stored entry and the wanted one."""
    a, b = have.settings(), want.settings()
    return tuple(f for f in registry.ENTRY_FIELDS if a[f] != b[f])


def _history(
    con: duckdb.DuckDBPyConnection, model_id: int, entry: ModelEntry, change: Change, registry_file: str | None
) -> None:
    """Insert one models_history row."""
    warehouse.execute(
        con,
        "registry_history_insert",
        [
            model_id,
            entry.name,
            change.change,
            list(change.fields),
            change.previous_revision,
            change.revision,
            dumps(entry.settings()),
            registry_file,
        ],
    )


def _write(
    con: duckdb.DuckDBPyConnection, want: ModelEntry, have: dict | None, registry_file: str | None
) -> Change:
    """Insert or update one entry (keeping model_id) and record the change; return it (inside a transaction)."""
    old = registry.entry_from_row(have) if have is not None else None
    params = [
        want.revision,
        want.backend,
        dumps(want.model_args),
        want.gguf_file,
        want.trust_remote_code,
        want.cost_per_mtok,
        list(want.tags),
        dumps(want.eval_args),
        want.base_url,
        want.api_key_env,
        want.onboard_questions,
        want.full_evaluation,
        registry_file,
    ]
    if old is None:
        model_id = con.execute(warehouse.sql_text("registry_insert_model"), [want.name] + params).fetchall()[0][0]
        change = Change(want.name, "added", revision=want.revision)
    else:
        diff = changed_fields(old, want)
        kind = "updated" if diff else "reactivated" if not old.active or old.source != "registry" else "unchanged"
        change = Change(want.name, kind, diff, old.revision, want.revision)
        model_id = old.model_id
        if kind != "unchanged" or (have.get("registry_file") != registry_file):
            warehouse.execute(con, "registry_update_model", params + [want.name])
    if change.change != "unchanged":
        _history(con, model_id, want, change, registry_file)
    return change


def add_model(
    db: str | Path,
    name: str,
    revision: str | None = None,
    backend: str | None = None,
    model_args: dict[str, Any] | str | None = None,
    gguf_file: str | None = None,
    trust_remote_code: bool = False,
    cost_per_mtok: float | None = None,
    tags: Iterable[str] = (),
    eval_args: dict[str, Any] | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    onboard_questions: int | None = None,
    full_evaluation: str | None = None,
    *,
    wait: float = 0.0,
) -> ModelEntry:
    """Return the registered entry after validating and upserting it (re-adding a removed model re-activates it)."""
    want = registry.make_entry(
        name,
        revision=revision,
        backend=backend,
        model_args=model_args,
        gguf_file=gguf_file,
        trust_remote_code=trust_remote_code,
        cost_per_mtok=cost_per_mtok,
        tags=tags,
        eval_args=eval_args,
        base_url=base_url,
        api_key_env=api_key_env,
        onboard_questions=onboard_questions,
        full_evaluation=full_evaluation,
    )
    with stage.writing(db, "register", wait=wait) as report:
        with stage.session(db) as con, warehouse.transaction(con):
            have = {r["name"]: r for r in _rows(con)}.get(want.name)
            change = _write(con, want, have, None)
        report.note = f"{change.change} {change.text()}"
    return get_model(db, want.name)


def remove_model(db: str | Path, name: str, *, wait: float = 0.0) -> ModelEntry:
    """Return the entry after marking it inactive (its labels, loads and eval runs stay)."""
    with stage.writing(db, "register", wait=wait) as report:
        with stage.session(db) as con, warehouse.transaction(con):
            entry = registry.entry_from_row(registry.find_row(_rows(con), name))
            if entry.active:
                warehouse.execute(con, "registry_remove_model", [entry.name])
                _history(
                    con, entry.model_id, entry, Change(entry.name, "deactivated", revision=entry.revision), None
                )
        report.note = f"deactivated {entry.name}"
    return get_model(db, entry.name)


# ------------------------------------------------------------------------------------------------ sync


def sync_registry(db: str | Path, path: str | Path, *, wait: float = 0.0) -> SyncReport:
    """Return what syncing the registry file PATH into the warehouse changed; raise if no model is left active."""
    wanted = [registry.validated(e) for e in registry.read_registry_file(path)]  # no connection open
    file = str(registry.registry_path(path))
    result = SyncReport(path=file)
    with stage.writing(db, "register", wait=wait) as report:
        with stage.session(db) as con, warehouse.transaction(con):
            have = {r["name"]: r for r in _rows(con)}
            result.changes = [_write(con, w, have.get(w.name), file) for w in wanted]
            listed = {w.name for w in wanted}
            for name, row in have.items():
                if row["registry_file"] == file and row["active"] and name not in listed:
                    entry = registry.entry_from_row(row)
                    warehouse.execute(con, "registry_remove_model", [name])
                    change = Change(name, "deactivated", revision=entry.revision)
                    _history(con, entry.model_id, entry, change, file)
                    result.changes.append(change)
            active = warehouse.query(con, "registry_active_count")["n"][0]
        report.note = result.line()
        report.skipped = all(c.change == "unchanged" for c in result.changes)
    result.report = report
    if not active:
        raise ConfigError(f"no active model: add one to {file} or run `embedllm models add NAME`")
    return result


def register_demo_models(db: str | Path, *, wait: float = 0.0) -> list[str]:
    """Return the names of the demo models after syncing the packaged demo registry file (idempotent)."""
    return [
        c.name for c in sync_registry(db, registry.DEMO_REGISTRY, wait=wait).changes if c.change != "deactivated"
    ]
