"""The import contract between layers, read from the source with ast (every import statement,
function-level ones included, since a lazy import is still an arrow):

- the UI reaches core only through its doorway, app/services.py, and never SQLAlchemy or the
  model stack (a page that imported torch would take seconds per fresh session and gigabytes
  per process);
- core's rooms import only the rooms below them (ROOMS), and never Streamlit;
- no import cycle among core's modules, nor among the app's;
- no function over MAX_FUNCTION_LINES lines in core/ or app/.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers")
# Scripts Streamlit runs, not modules to import: their module-level imports are checked.
SCRIPTS = ("app.main", "app.views.")
DOORWAY = "app.services"
MAX_FUNCTION_LINES = 80

# core's rooms, bottom to top: each may import itself and the rooms listed, nothing else.
# "base" is the root's small modules every room may use; a room's name is its folder, or for
# a module at the root of core/, its own name.
BASE = ("core", "core.errors", "core.defaults", "core.text", "core.config", "core.metrics")
ROOMS: dict[str, set[str]] = {
    "base": set(),  # errors, defaults, text, config, metrics
    "store": {"base"},  # the database: engine, schema, migrations, the write gate
    # weak labelers and their assembly into sources; tasks, the task registry, names each
    # task's labeler and evidence, and the assembly asks a project's task: the two rooms know
    # each other, and the cycle test keeps their modules out of a loop
    "weak": {"base", "tasks"},
    "tasks": {"base", "weak"},
    "model": {"base", "weak", "tasks"},  # the tagger: never a project, a file or a job
    "labeling": {"base", "store", "weak", "tasks"},  # projects, annotations, review, users
    "io": {"base", "store", "labeling", "weak", "tasks", "model"},  # formats and files
    "active": {"base", "store", "labeling", "model", "tasks"},  # strategies, scoring
    "jobs": {"base", "store", "labeling", "io", "active", "model", "weak", "tasks"},
    "demo": {"base", "store", "labeling", "io", "tasks"},
    "bench": {"base", "store", "labeling", "io", "active", "jobs", "model", "weak", "tasks"},
    "cli": {"base", "store", "labeling", "io", "active", "jobs", "model", "weak", "tasks"}
    | {"bench", "demo"},
}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules(folder: str) -> dict[str, Path]:
    return {_module(path): path for path in sorted((ROOT / folder).rglob("*.py"))}


def _is_module(name: str) -> bool:
    """Whether a dotted name is a module of this repository (not a function imported from one)."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@cache
def _imports(path: Path, *, top_level_only: bool = False) -> frozenset[str]:
    """What a file imports, every import statement in it (or its module body's only): for
    `from X import Y` both X and X.Y, relative imports made absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    name = _module(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(out)


def _module_imports(path: Path) -> set[str]:
    """The repository modules a file imports (X.Y where Y is a module, else X)."""
    return {name for name in _imports(path) if name and _is_module(name)}


def _room(module: str) -> str:
    if module in BASE:
        return "base"
    parts = module.split(".")
    return parts[1]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _graph(folder: str) -> dict[str, set[str]]:
    """Module -> the modules of the same folder it imports (a package's own submodules it
    re-exports count; a module's import of its own package does not make a cycle)."""
    modules = _modules(folder)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {t for t in _module_imports(path) if t in modules and t != name}
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    return graph


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


def _functions(folder: str) -> Iterator[tuple[str, str, int]]:
    """(place, name, lines) of every function and method under a folder."""
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                place = f"{path.relative_to(ROOT)}:{node.lineno}"
                yield place, node.name, node.end_lineno - node.lineno + 1


def test_the_app_reaches_core_only_through_its_doorway():
    offenders = []
    for name, path in _modules("app").items():
        names = _imports(path)
        for target in sorted(names):
            if target.rpartition(".")[0] in names:
                continue  # `from X import Y`: X is named already
            top = target.split(".")[0]
            if top == "sqlalchemy" or target == "core.model" or target.startswith("core.model."):
                offenders.append(f"{path.relative_to(ROOT)} imports {target}")
            elif top == "core" and name != DOORWAY:
                offenders.append(f"{path.relative_to(ROOT)} imports {target} (not via {DOORWAY})")
    assert offenders == [], "\n".join(offenders)


def test_the_ui_and_its_services_load_no_torch_or_transformers():
    wanted: set[str] = set()
    for name, path in _modules("app").items():
        if not name.startswith(SCRIPTS):
            wanted.add(name)
        wanted |= {m for m in _imports(path, top_level_only=True) if m.startswith("core.")}
    wanted = {m for m in wanted if _is_module(m)}
    assert DOORWAY in wanted and "app.ui" in wanted
    assert _loaded_after_importing(sorted(wanted)) == []


def test_core_never_imports_streamlit():
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules("core").values()
        for name in _imports(path)
        if name.split(".")[0] == "streamlit"
    ]
    assert offenders == []


def test_every_room_of_core_is_in_the_table():
    rooms = {_room(name) for name in _modules("core")}
    assert rooms <= set(ROOMS), f"rooms missing from ROOMS: {sorted(rooms - set(ROOMS))}"
    for room, below in ROOMS.items():
        assert below <= set(ROOMS), f"{room} names rooms that do not exist"


def test_core_rooms_import_only_the_rooms_below_them():
    wrong: set[tuple[str, str]] = set()
    for name, path in _modules("core").items():
        room = _room(name)
        for target in _module_imports(path):
            if target.split(".")[0] != "core":
                continue
            to = _room(target)
            if to != room and to not in ROOMS.get(room, set()):
                wrong.add((name, target))
    new = sorted(wrong)
    assert new == [], "arrows against ROOMS (module -> module it imports):\n" + "\n".join(
        f"  {a} -> {b}   ({_room(a)} may import {sorted(ROOMS[_room(a)]) or 'nothing'})"
        for a, b in new
    )


def test_no_import_cycle_in_core_or_the_app():
    for folder in ("core", "app"):
        cycles = _cycles(_graph(folder))
        assert cycles == [], f"import cycles in {folder}/ (function-level imports count):\n" + (
            "\n".join("  " + " <-> ".join(cycle) for cycle in cycles)
        )


def test_no_function_is_longer_than_the_limit():
    long = [
        f"  {place} {name}: {lines} lines"
        for folder in ("core", "app")
        for place, name, lines in _functions(folder)
        if lines > MAX_FUNCTION_LINES
    ]
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
