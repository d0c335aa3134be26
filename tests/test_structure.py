"""The house's measures (issue 27), read from the code: every import runs downward through the layers
of docs/architecture.md, no import circle, no file over 800 lines, and the config package loads
without torch. Imports inside functions count too: a lazy import is still a dependency."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gan_cli"

# docs/architecture.md's layers, lowest first; a module may import its own layer or a lower one.
# Within the parts, data < models < the rest (losses, metrics, schedules, figures drawn from models).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("config", "conf", "errors", "checkpoint", "distributed", "seeding", "latents", "ema", "stats",
     "loggers", "animation", "panels", "rundir", "sessions"),
    ("data",),
    ("models",),
    ("losses", "metrics", "schedules", "style_figures", "curves", "report"),
    ("build",),
    ("training",),
    ("cli", "launch", "evaluate", "sample", "help", "typos", "defaults", "scripts"),
)
MAX_LINES = 800


def _module(path: Path) -> str:
    parts = ["gan_cli", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The gan_cli modules ``path`` imports (``from a import b`` is a.b when b is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("gan_cli"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gan_cli"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
    return {m for m in found if m in modules}


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "gan_cli"
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module} is in no layer of LAYERS (docs/architecture.md): place it")


def test_every_import_runs_downward():
    modules = _modules()
    upward = []
    for name, path in sorted(modules.items()):
        if name == "gan_cli":
            continue
        for target in sorted(_imports(path, modules)):
            if target != "gan_cli" and _layer(target) > _layer(name):
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_no_import_circle():
    modules = _modules()
    graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
    # A package's __init__ importing its own submodules is how a package exports; the circle that
    # matters is between modules, so an edge into a package's __init__ from inside it is left out.
    for m in graph:
        graph[m] = {t for t in graph[m] if not (m.startswith(t + ".") and modules[t].name == "__init__.py")}
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    # raised for the walk only: left at 10,000, it made every later test of this xdist worker that
    # parses a file nested past the parser ten times slower (PyYAML's scanner: depth squared)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    assert circles == []


def test_no_file_over_800_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_config_package_loads_without_torch():
    code = ("import sys, gan_cli.config, gan_cli.config.trust; "
            "gan_cli.config.register_configs(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent)
    assert out.stdout.strip() == "False"
