"""Structure: imports point one way (edges -> flows -> tasks -> warehouse -> core), the env is read only at the
edges, the core model file imports only torch and yaml, and sql/ ships inside a wheel that can migrate a warehouse.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("embedllm", "flows", "tasks", "warehouse")
EDGES = ("embedllm.cli", "embedllm.service")
# Higher number = higher layer; a module may import only its own layer or lower ones.
LAYERS = {"edge": 4, "flows": 3, "tasks": 2, "warehouse": 1, "core": 0}


def layer_of(module: str) -> str | None:
    """Return the layer a dotted module name belongs to, or None for outside code."""
    top = module.split(".")[0]
    if top not in PACKAGES:
        return None
    if any(module == e or module.startswith(e + ".") for e in EDGES):
        return "edge"
    return "core" if top == "embedllm" else top


def module_name(root: Path, file: Path) -> str:
    """Return the dotted module name of a source file under root."""
    parts = list(file.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, current: str) -> list[tuple[int, str]]:
    """Return (line, module) for every import in a module, lazy ones inside functions included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the current package
                base = current.split(".")[: -node.level] if node.level else []
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{a.name}") for a in node.names if layer_of(f"{name}.{a.name}")]
    return found


def upward_imports(root: Path) -> list[str]:
    """Return `file:line: A (layer) imports B (layer)` for every import that points to a higher layer."""
    problems, seen = [], set()
    for package in PACKAGES:
        for file in sorted((root / package).rglob("*.py")):
            current = module_name(root, file)
            mine = layer_of(current)
            for line, target in imported_modules(ast.parse(file.read_text()), current):
                theirs = layer_of(target)
                where = f"{file.relative_to(root)}:{line}"
                if theirs and LAYERS[theirs] > LAYERS[mine] and where not in seen:
                    seen.add(where)
                    problems.append(f"{where}: {current} ({mine}) imports {target} ({theirs})")
    return problems


def test_imports_point_one_way():
    assert upward_imports(ROOT) == []


def test_structure_check_catches_a_planted_upward_import(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "embedllm" / "cli").mkdir()
    (tmp_path / "embedllm" / "cli" / "__init__.py").write_text("import flows\n")  # edge -> flows: fine
    (tmp_path / "tasks" / "train.py").write_text("import warehouse\nfrom embedllm import model\n")  # fine
    (tmp_path / "embedllm" / "model.py").write_text(
        textwrap.dedent("""
        def load():
            from tasks.train import fit    # core -> tasks: upward, even when lazy
            return fit
    """)
    )
    (tmp_path / "warehouse" / "__init__.py").write_text("from flows import steps\n")  # warehouse -> flows
    found = upward_imports(tmp_path)
    assert len(found) == 2
    assert any("embedllm.model (core) imports tasks.train (tasks)" in p for p in found)
    assert any("warehouse (warehouse) imports flows" in p for p in found)


def code_without_strings(file: Path) -> str:
    """Return a source file's tokens with strings and comments left out (docstrings may name the env var)."""
    with file.open("rb") as f:
        tokens = tokenize.tokenize(f.readline)
        return " ".join(t.string for t in tokens if t.type not in (tokenize.STRING, tokenize.COMMENT))


def test_warehouse_env_is_read_only_at_the_edges():
    readers = []
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            text = code_without_strings(file)
            edge = layer_of(module_name(ROOT, file)) in ("edge", "flows") or file.name == "settings.py"
            if not edge and (
                "resolve_warehouse(" in text or "EMBEDLLM_WAREHOUSE" in text or "WAREHOUSE_ENV" in text
            ):
                readers.append(str(file.relative_to(ROOT)))
    assert readers == []


def test_model_module_loads_torch_and_yaml_only():
    code = (
        "import sys, embedllm.model; heavy = {'duckdb', 'polars', 'pyarrow', 'warehouse', 'tasks', 'flows', "
        "'prefect', 'sentence_transformers', 'lm_eval'}; print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.timeout(600)
def test_wheel_installs_and_migrates_a_new_warehouse(tmp_path):
    """A non-editable install (wheel in a fresh venv) ships sql/ and the config: `embedllm` works outside the clone."""
    wheel_dir, venv, work, src = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere", tmp_path / "src"
    work.mkdir()
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in tracked:  # build from a copy of the tracked files, so nothing is written into the checkout
        if name.split("/")[0] in ("pyproject.toml", "README.md", *PACKAGES, "sql") and (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, src / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(wheel_dir.glob("embedllm-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "_embedllm_deps.pth").write_text(deps + "\n")  # the dependencies of this env, not its embedllm
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EMBEDLLM_WAREHOUSE")}
    run = lambda *args: subprocess.run(args, capture_output=True, text=True, cwd=work, env=env, timeout=300)
    where = run(str(venv / "bin" / "python"), "-c", "import embedllm, sql; print(embedllm.__file__, sql.__file__)")
    assert str(site) in where.stdout and str(ROOT) not in where.stdout, where.stdout + where.stderr
    helped = run(str(venv / "bin" / "embedllm"), "run", "--help")
    assert helped.returncode == 0 and "--limit" in helped.stdout, helped.stderr
    status = run(str(venv / "bin" / "embedllm"), "status", "--warehouse", str(work / "new.duckdb"))
    migrated = run(
        str(venv / "bin" / "python"),
        "-c",
        "import warehouse; con = warehouse.connect('fresh.duckdb');"
        " print(con.execute('SELECT count(*) FROM _migrations').fetchall()[0][0])",
    )
    assert migrated.returncode == 0 and int(migrated.stdout.strip()) >= 10, migrated.stderr
    assert status.returncode in (0, 1) and "Traceback" not in status.stderr, status.stderr
