"""The layout tells the story: data flows one way through the layers, with no import cycles.

    foundation  harvester/{settings,sources,config_files,model,errors,logs,redact}.py,
                harvester/defaults/, indexer/resources/ (imported by every layer)
    oai         harvester/oai/        talking OAI-PMH
    store       harvester/store/      what is kept on disk (and in Redis)
    normalize   harvester/normalize/  raw record -> Record, one crosswalk per format
    indexer     indexer/              search documents in, search responses out
    run         harvester/run/        in-process orchestration of the layers above
    entry       harvester/{cluster,web,cli,demo}/  Celery, ernte serve, the command line, demo

A module imports only from its own layer or lower ones. Imports are read from the source (every
`import`, also inside functions and `if TYPE_CHECKING:`), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FOUNDATION = {
    "harvester",
    "harvester.config_files",
    "harvester.errors",
    "harvester.logs",
    "harvester.model",
    "harvester.redact",
    "harvester.settings",
    "harvester.sources",
    "harvester.defaults",
    "indexer.resources",
}
LAYERS = ["foundation", "oai", "store", "normalize", "indexer", "run", "entry"]
PREFIXES = {
    "harvester.oai": "oai",
    "harvester.store": "store",
    "harvester.normalize": "normalize",
    "harvester.run": "run",
    "harvester.cluster": "entry",
    "harvester.web": "entry",
    "harvester.cli": "entry",
    "harvester.demo": "entry",
    "indexer": "indexer",
}


def _module_files() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in ("harvester", "indexer"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _module_files()


def _imports(name: str, path: Path) -> set[str]:
    """The project's modules `name` imports (`from a import b` counts as a.b when b is one)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(c for c in candidates if c in MODULES and c != name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def layer_of(module: str) -> str:
    if module in FOUNDATION:
        return "foundation"
    for prefix in sorted(PREFIXES, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return PREFIXES[prefix]
    raise AssertionError(f"{module} belongs to no layer: add it to tests/test_layout.py")


def test_the_modules_are_found() -> None:
    assert {"harvester.oai.client", "harvester.store.archive", "harvester.run.pipeline"} <= set(
        MODULES
    )
    assert GRAPH["harvester.run.pipeline"], "the pipeline imports the layers it runs"


def test_no_import_cycle_between_modules() -> None:
    """Tarjan's strongly connected components over the module import graph: none is larger
    than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert cycles == []


def test_the_indexer_imports_nothing_from_the_harvester() -> None:
    """The harvester orchestrates and imports the indexer, never the other way round."""
    wrong = {
        (module, target)
        for module, targets in GRAPH.items()
        if module.startswith("indexer")
        for target in targets
        if target.startswith("harvester")
    }
    assert wrong == set()


def test_lower_layers_never_import_higher_ones() -> None:
    wrong = sorted(
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, targets in GRAPH.items()
        for target in targets
        if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module))
    )
    assert wrong == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_says_its_job_in_its_first_line(module: str) -> None:
    docstring = ast.get_docstring(ast.parse(MODULES[module].read_text(encoding="utf-8")))
    assert docstring, f"{module} has no docstring"
    first_line = docstring.splitlines()[0].strip()
    assert len(first_line.split()) >= 4, f"{module}: {first_line!r} does not say its job"


def test_only_the_command_line_imports_the_other_entry_points() -> None:
    """`ernte` starts the server, the worker and the demo; they never reach back into the CLI
    (what they share lives in a lower layer, e.g. `indexer.user_request`)."""
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if layer_of(module) == "entry" and not module.startswith("harvester.cli")
        for target in targets
        if layer_of(target) == "entry" and module.split(".")[1] != target.split(".")[1]
    )
    assert wrong == []
