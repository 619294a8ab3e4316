"""The package's layout shows the pipeline: one package per layer, every import pointing down.

    form      the intermediate form: expressions, shapes, the meaning of a context, the functions
    latex     reading LaTeX (Markdown, .tex, notebooks) into the intermediate form
    engines   the proofs: explicit sizes, every size, every T, whole algorithms; the verdict names
    analyses  what is said of a wrong line: repairs, the derived line, other readings
    running   scheduling the claims of a file over processes, the cache
    outputs   the report's data, the generated NumPy module, the command line

A module imports only modules of its own layer or of the layers above it in this list (imports
inside functions counted), no two modules import each other (directly or through others), and no
module imports another's private names.  reports/ and numeric/ import nothing of the package:
they work on what they are handed (the report dict; the generated kernel).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "derivations"
LAYERS = ("form", "latex", "engines", "analyses", "running", "outputs")


def _modules() -> dict:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, modules: dict):
    """(imported module, names) of every `from ... import` in the module, resolved to absolute names."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                yield (full, None) if full in modules else (target, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _graph():
    modules = _modules()
    graph, private = {m: set() for m in modules}, []
    for name, path in modules.items():
        as_module = {}                      # local name -> a module of the package imported under it
        for target, imported in _imports(name, path, modules):
            if target in modules and target != name:
                graph[name].add(target)
                if imported and _private(imported):
                    private.append((name, target, imported))
        tree = ast.parse(path.read_text())
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:
                        as_module[alias.asname or alias.name] = f"{target}.{alias.name}"
        # module._name: another module's private name, reached through the module
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr) \
                    and node.value.id in as_module and as_module[node.value.id] != name:
                private.append((name, as_module[node.value.id], node.attr))
    return graph, private


def _layer(module: str):
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_is_in_a_layer():
    outside = [m for m in _modules() if _layer(m) is None
               and m not in ("derivations", "derivations.__main__")]
    assert outside == []


def _upward(graph) -> list:
    return [(m, d) for m, deps in graph.items() for d in deps
            if _layer(m) is not None and _layer(d) is not None and _layer(d) > _layer(m)]


def _cycles(graph) -> list:
    """Tarjan's strongly connected components: a component of two or more modules is a cycle."""
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
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
                cycles.append(sorted(component))
    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_imports_point_down_the_layers():
    graph, _ = _graph()
    assert _upward(graph) == []


def test_no_import_cycle_and_no_private_import():
    graph, private = _graph()
    assert private == []
    assert _cycles(graph) == []


def test_reports_and_numeric_depend_only_on_what_they_are_handed():
    for folder in ("reports", "numeric"):
        for p in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(p.read_text())
            names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level]
            names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
            assert not [n for n in names if n.split(".")[0] == "derivations"], p


def test_the_checks_catch_an_upward_import_and_a_cycle():
    # Not vacuous: an engine importing the runner is upward, and with the runner's import of the engines a
    # cycle.
    graph, _ = _graph()
    graph["derivations.engines.explicit"].add("derivations.running.runner")
    assert ("derivations.engines.explicit", "derivations.running.runner") in _upward(graph)
    assert any("derivations.engines.explicit" in c and "derivations.running.runner" in c for c in _cycles(graph))
