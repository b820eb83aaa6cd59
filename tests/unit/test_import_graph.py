"""The architecture a reader should see, checked rather than trusted: imports between the
packages of `batchscribe` flow one way, and the pipeline and the events never need a web
framework (they run in worker processes, CLIs and relays as well as under the HTTP layer)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import batchscribe

PACKAGE_ROOT = Path(batchscribe.__file__).resolve().parent
WEB_FRAMEWORKS = ("fastapi", "starlette", "uvicorn")
#: Packages that must run without a web framework, even through what they import.
FRAMEWORK_FREE = ("pipeline", "events", "services", "auth")
#: The seed plan's module names, kept as re-exports of the real homes. They are entry points
#: for users; nothing inside the package may depend on them.
SEED_SHIMS = ("models", "utils", "routers")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Every module `path` imports, at any depth of the file (lazy imports count too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = (
        _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                yield f"{base}.{node.module}" if node.module else base
            elif node.module:
                yield node.module
                yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _modules() -> dict[str, set[str]]:
    return {_module_name(p): set(_imports(p)) for p in PACKAGE_ROOT.rglob("*.py")}


def _unit(module: str) -> str | None:
    """The architectural unit of a module: `batchscribe.<first part>` (a package or a
    top-level module such as `config`); None outside batchscribe or for the package root."""
    parts = module.split(".")
    if parts[0] != "batchscribe" or len(parts) < 2:
        return None
    return parts[1]


def _package_graph(modules: dict[str, set[str]]) -> dict[str, set[str]]:
    """unit -> the units it imports (names of the package root itself, like `__version__`,
    are not units)."""
    units = {unit for module in modules if (unit := _unit(module)) is not None}
    graph: dict[str, set[str]] = {unit: set() for unit in units}
    for module, imported in modules.items():
        source = _unit(module)
        if source is None:
            continue
        for name in imported:
            target = _unit(name)
            if target in units and target != source:
                graph[source].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_checker_finds_a_cycle_and_accepts_a_chain() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_between_packages() -> None:
    graph = _package_graph(_modules())
    assert {"http", "events", "pipeline", "aws", "infra", "config"} <= set(graph)
    cycle = _cycle(graph)
    assert cycle is None, "packages import each other: " + " -> ".join(cycle or [])


def test_nothing_inside_depends_on_the_seed_shims() -> None:
    graph = _package_graph(_modules())
    users = {src: sorted(dst & set(SEED_SHIMS)) for src, dst in graph.items()}
    assert {src: dst for src, dst in users.items() if dst} == {}


def test_pipeline_and_events_never_import_a_web_framework() -> None:
    modules = _modules()
    for unit in FRAMEWORK_FREE:
        seen: set[str] = set()
        todo = [m for m in modules if _unit(m) == unit]
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            for name in modules.get(module, ()):
                assert not name.startswith(WEB_FRAMEWORKS), (
                    f"{module} imports {name}, so batchscribe.{unit} needs a web framework"
                )
                if name in modules:
                    todo.append(name)
        assert len(seen) > 3, f"found too few modules of batchscribe.{unit} to trust this"


def test_no_import_cycle_between_modules() -> None:
    """The one-way rule holds inside packages too: the HTTP routes use the dependencies and the
    error mapping, which never import a route back; a cycle means a piece is in the wrong
    module."""
    modules = _modules()
    graph = {
        module: {name for name in imported if name in modules and name != module}
        for module, imported in modules.items()
    }
    assert {"batchscribe.http.app", "batchscribe.http.routes.batch"} <= set(graph)
    cycle = _cycle(graph)
    assert cycle is None, "modules import each other: " + " -> ".join(cycle or [])


def test_a_worker_on_sqlite_and_files_loads_no_aws_postgres_or_http_client() -> None:
    """What a worker process imports to run jobs on SQLite and a file blob store: boto3,
    psycopg and httpx would cost it about 70 MB of memory for nothing (each worker holds its
    own copy), so they are imported only where S3, PostgreSQL or a webhook send needs them."""
    code = (
        "import sys\n"
        "import batchscribe.jobs.worker as w\n"
        "from batchscribe.blobs import open_blob_store\n"
        "from batchscribe.db import Database\n"
        "from batchscribe.jobs.factory import job_store\n"
        "from batchscribe.jobs.pieces import PieceStore\n"
        "from batchscribe.jobs.runner import JobRunner\n"
        "from batchscribe.jobs.splitting import Splitter\n"
        "from batchscribe.pipeline.cleaners import build_cleaner\n"
        "from batchscribe.pipeline.transcribers import build_transcriber\n"
        "heavy = ('boto3', 'botocore', 'psycopg', 'httpx')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert loaded == []
