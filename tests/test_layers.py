"""The import contract between layers: the UI never loads the model stack, core never loads
the UI. A page that imported torch would take seconds per fresh session and gigabytes per
process; core importing Streamlit would tie the CLI and the jobs to the UI."""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers")
# Core services the pages call, beside whatever app/ imports at module level.
UI_SERVICES = (
    "core.labeling.annotations",
    "core.labeling.progress",
    "core.labeling.projects",
    "core.jobs.versions",
    "core.jobs.queue",
    "core.io.corpus",
    "core.io.imports",
    "core.active.strategies",
    "core.store.db",
    "core.io.formats",
    "core.weak.project",
)
# Scripts Streamlit runs, not modules to import: their module-level imports are checked.
SCRIPTS = ("app.main", "app.views.")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """Modules a file imports: those of its module body, or every import statement in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _is_module(name: str) -> bool:
    """Whether a dotted name is a module of this repository (not a function imported from one)."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _loaded_after_importing(modules: list[str]) -> list[str]:
    """Which of HEAVY a fresh interpreter holds after importing `modules`."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_ui_and_its_services_load_no_torch_or_transformers():
    wanted: set[str] = set(UI_SERVICES)
    for path in sorted((ROOT / "app").rglob("*.py")):
        name = _module(path)
        if not name.startswith(SCRIPTS):
            wanted.add(name)
        wanted |= {m for m in _imports(path, top_level_only=True) if m.startswith("core.")}
    wanted = {m for m in wanted if _is_module(m)}
    assert "core.labeling.annotations" in wanted and "app.ui" in wanted
    assert _loaded_after_importing(sorted(wanted)) == []


def test_core_never_imports_streamlit():
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "core").rglob("*.py"))
        for name in _imports(path, top_level_only=False)
        if name.split(".")[0] == "streamlit"
    ]
    assert offenders == []
