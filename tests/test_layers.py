"""The package's shape, read from its source: the layers of docs/architecture.md hold.

Module-level imports form no cycle; only `flux_demo.ui` imports Gradio at module level and nothing below
the UI imports it; no module imports another's private names; `flux_demo/` keeps at most twelve flat
modules (concerns with several modules are packages); training code lives outside the runtime package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "flux_demo"
MAX_FLAT_MODULES = 12


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, top_level_only: bool) -> list[tuple[str, list[str]]]:
    """(imported module, imported names) for each import in `path` (module level only, if asked)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            found.append((base, [alias.name for alias in node.names]))
    return found


def internal_targets(path: Path) -> set[str]:
    """The package's modules that `path` imports at module level (a name imported from a package counts
    as that submodule when it is one)."""
    targets = set()
    for module, names in imports(path, top_level_only=True):
        if not module.startswith("flux_demo"):
            continue
        submodules = {f"{module}.{name}" for name in names} & MODULES.keys()
        targets |= submodules or ({module} & MODULES.keys())
    return targets


def test_module_level_imports_form_no_cycle():
    graph = {name: internal_targets(path) - {name} for name, path in MODULES.items()}
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycle = [*trail[trail.index(target) :], target] if target in trail else [node, target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_only_the_ui_imports_gradio_at_module_level_and_nothing_below_it_imports_the_ui(name):
    if name.startswith("flux_demo.ui"):
        return
    path = MODULES[name]
    for module, _names in imports(path, top_level_only=True):
        assert module.split(".")[0] != "gradio", f"{name} imports Gradio at module level"
    for module, _names in imports(path, top_level_only=False):
        assert not module.startswith("flux_demo.ui"), f"{name} imports the UI ({module})"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_another_modules_private_names(name):
    for module, names in imports(MODULES[name], top_level_only=False):
        if module.startswith("flux_demo"):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            assert not private, f"{name} imports private {private} from {module}"


def test_the_package_keeps_at_most_twelve_flat_modules():
    flat = sorted(p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(flat) <= MAX_FLAT_MODULES, f"{len(flat)} flat modules: {flat}"


def test_training_code_lives_outside_the_runtime_package():
    for name, path in MODULES.items():
        for module, _names in imports(path, top_level_only=False):
            assert not module.startswith(("training", "torch.optim")), f"{name} imports {module}"
