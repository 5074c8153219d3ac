"""The import graph of the three packages: no cycle, no import from a higher layer, every module
on DESIGN.md's map. Read from the source with `ast` (every import, also those inside functions:
a lazy import hides a cycle from Python but not from a reader)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ibstore", "trainer", "explorer")

# trainer's layers, lowest first: a module imports only modules of lower layers (DESIGN.md, "Map").
# A subpackage (config, estimators) is one node here; inside it the no-cycle rule holds.
TRAINER_LAYERS = (
    ("xla_flags", "quiet", "machine"),
    ("tensorflow_without_keras",),
    ("atomic", "activation_facts", "bit_counts", "datasets", "schedule", "optimizers", "xla_cache",
     "final_metrics", "listing", "sql_output", "progress", "arguments", "minibatch_orders", "interrupts"),
    ("tables", "estimators", "summaries", "health", "stack_rows"),
    ("measure", "config", "split_facts"),
    ("store", "saved", "checkpoint", "model"),
    ("compiled", "flushing"),
    ("network_rows",),
    ("training",),
    ("plan",),
    ("task",),
    ("local_pool", "shipping"),   # shipping: issue 20 on main (Ray workers without the root)
    ("ray_pool",),
    ("sweep", "reestimate"),
    ("sweep_command", "run_command"),
    ("cli",),
    ("__main__",),
)


# ibstore's layers, lowest first, as DESIGN.md lists its modules.
IBSTORE_LAYERS = (
    ("strict_json", "flatten", "text", "temporal_text", "phases", "private_file", "collector", "query_process",
     "shared_table", "git_commit", "read_retry"),
    ("configdiff", "record", "index_prune"),
    ("schema", "progress", "statement_check", "stats"),
    ("layout", "statement_runs", "trend"),
    ("lock", "scan_footer"),
    ("scan",),
    ("lifecycle", "scan_pages", "views"),
    ("index_file",),
    ("index_pages", "index_pending", "index_stat", "scan_workers"),
    ("index_views",),
    ("index",),
    ("sandbox",),
    ("query_warmup",),
)
LAYERS = {"trainer": TRAINER_LAYERS, "ibstore": IBSTORE_LAYERS}


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the three packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module or name, whether the import is at module level) of one file."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(name, id(node) in top_level)
                      for name in [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]]
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (a package's own __init__ imports left out)."""
    modules = module_files()
    return {module: {name for name, _ in imports(path)
                     if name in modules and name != module and not module.startswith(name + ".")}
            for module, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_through_three_modules():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", ["trainer", "explorer"])
def test_no_import_cycle(package):
    edges = {m: {t for t in targets if t.split(".")[0] == package}
             for m, targets in graph().items() if m.split(".")[0] == package}
    assert cycles(edges) == []


def test_no_import_cycle_in_ibstore():
    edges = {m: {t for t in targets if t.startswith("ibstore")}
             for m, targets in graph().items() if m.startswith("ibstore")}
    assert cycles(edges) == []


def test_packages_import_one_way():
    """ibstore imports neither trainer nor explorer; the explorer does not import the trainer or
    TensorFlow; the trainer imports the explorer only lazily, in `trainer report`'s verb."""
    for module, path in module_files().items():
        package = module.split(".")[0]
        for name, top_level in imports(path):
            root = name.split(".")[0]
            if package == "ibstore":
                assert root not in ("trainer", "explorer", "tensorflow", "streamlit"), (module, name)
            if package == "explorer":
                assert root not in ("trainer", "tensorflow", "keras"), (module, name)
            if package == "trainer" and root == "explorer":
                assert module == "trainer.cli" and not top_level, (module, name)


def layer(module: str) -> int:
    """The layer of a trainer or ibstore module ("trainer.config.experiment": config's)."""
    package, node = module.split(".")[:2]
    for number, names in enumerate(LAYERS[package]):
        if node in names:
            return number
    raise AssertionError(f"{module} is on no layer of {package.upper()}_LAYERS (add it there and to DESIGN.md's map)")


@pytest.mark.parametrize("package", ["trainer", "ibstore"])
def test_modules_import_only_lower_layers(package):
    """E.g. the training loop does not import the sweep planner, the scan does not import the index."""
    for module, targets in graph().items():
        if not module.startswith(package + ".") or module.endswith(".__init__"):
            continue
        for target in targets:
            if target.startswith(package + ".") and target.split(".")[1] != module.split(".")[1]:
                assert layer(target) < layer(module), f"{module} imports {target}"


def test_ibstore_layers_are_the_order_of_design_md():
    design = (REPO / "DESIGN.md").read_text()
    listing = design[design.index("`ibstore/` (no TensorFlow"):design.index("`trainer/`, lowest first")]
    modules = {name for names in IBSTORE_LAYERS for name in names}
    order = list(dict.fromkeys(name for name in re.findall(r"`([a-z_]+)`", listing) if name in modules))
    assert set(order) == modules
    assert [layer(f"ibstore.{n}") for n in order] == sorted(layer(f"ibstore.{n}") for n in order)


def test_every_module_is_on_the_design_map():
    design = (REPO / "DESIGN.md").read_text()
    map_section = design[design.index("## Map"):design.index("## Public interfaces")]
    named = set(re.findall(r"`([a-z_]+)(?:\.py|/)?`", map_section))
    for module in module_files():
        if module.count(".") == 1 and not module.endswith("__main__"):
            assert module.split(".")[1] in named, f"{module} is not named on DESIGN.md's map"
