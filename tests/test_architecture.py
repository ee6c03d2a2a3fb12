"""The package's structure as ARCHITECTURE.md states it: imports flow one way (ops → nn → models → train →
cli), and ``gnnlab.ops`` / ``gnnlab.nn`` keep no module-level mutable state."""
from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import pkgutil
import sys
import types
import typing

import pytest

import gnnlab

PACKAGE = pathlib.Path(gnnlab.__file__).parent

#: What each part of the package may import from the others (its own modules are always allowed).
#: ``errors`` and ``files`` are leaves every part may use. The command-line layer (``cli``, the table
#: commands and cross validation) may use everything below it, and its modules must not import in a cycle.
BASE = {"errors", "files"}
CLI_LAYER = {"cli", "table", "benchmark_table", "cross_validation", "published", "sweeps"}
ALLOWED = {
    "errors": set(),
    "files": set(),
    "config_schema": BASE,
    "ops": BASE,
    "nn": BASE | {"ops"},
    "transforms": BASE | {"ops"},
    "analysis": BASE | {"ops"},
    "models": BASE | {"ops", "nn"},
    "data": BASE | {"ops", "transforms"},
    "train": BASE | {"ops", "nn", "models", "transforms", "data", "config_schema"},
}
BELOW_CLI = set(ALLOWED)


def _modules():
    """(dotted module name, path) for every module of the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("gnnlab",) + path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(module: str, path: pathlib.Path):
    """Every gnnlab module that ``module`` imports, at the top or inside a function, with its line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [base]
        else:
            continue
        for name in names:
            if name == "gnnlab" or name.startswith("gnnlab."):
                yield name, node.lineno


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "gnnlab"


def test_every_part_has_a_rule():
    parts = {_part(module) for module, _ in _modules()} - {"gnnlab", "_C"}
    unruled = parts - set(ALLOWED) - CLI_LAYER
    assert not unruled, f"parts of the package without an import rule: {sorted(unruled)}"


def test_imports_flow_one_way():
    wrong = []
    cli_edges = {}
    for module, path in _modules():
        source = _part(module)
        if path.name == "__main__.py" or source == "gnnlab":
            continue  # entry points (`python -m gnnlab.train`) and the package docstring
        for target, line in _imports(module, path):
            dest = _part(target)
            if dest in (source, "gnnlab", "_C"):
                continue
            if source in CLI_LAYER:
                if dest in CLI_LAYER:
                    cli_edges.setdefault(source, set()).add(dest)
                    continue
                if dest in BELOW_CLI:
                    continue
            elif dest in ALLOWED[source]:
                continue
            wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({source}) imports {target} ({dest})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)

    # The command-line modules import each other without a cycle.
    done = set()

    def visit(node, trail):
        if node in trail:
            raise AssertionError(f"import cycle in the command-line layer: {' -> '.join(trail + [node])}")
        if node in done:
            return
        for dest in sorted(cli_edges.get(node, ())):
            visit(dest, trail + [node])
        done.add(node)

    for node in sorted(CLI_LAYER):
        visit(node, [])


def test_import_rules_catch_a_backward_import_and_a_cycle(tmp_path, monkeypatch):
    fake = tmp_path / "gnnlab"
    (fake / "ops").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "ops" / "__init__.py").write_text("from gnnlab.train import Trainer\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    with pytest.raises(AssertionError, match=r"\(ops\) imports gnnlab.train"):
        test_imports_flow_one_way()
    (fake / "ops" / "__init__.py").write_text("")
    (fake / "cli.py").write_text("def main():\n    from gnnlab.table import write_table\n")
    (fake / "table.py").write_text("from gnnlab.cli import main\n")
    with pytest.raises(AssertionError, match="import cycle in the command-line layer: cli -> table -> cli"):
        test_imports_flow_one_way()


def _mutable(value) -> bool:
    """Whether a module attribute is state that can change after import."""
    if isinstance(value, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType,
                          types.MethodType, typing.TypeVar, property, staticmethod, classmethod)):
        return False
    if isinstance(value, (str, bytes, int, float, complex, bool, type(None), range, frozenset,
                          types.MappingProxyType)):
        return False
    if isinstance(value, tuple):
        return any(_mutable(item) for item in value)
    if type(value).__module__ in ("typing", "collections.abc", "torch._ops", "torch") and not isinstance(
            value, (list, dict, set)):
        return False  # typing aliases (Callable[...]), torch dtypes and op namespaces
    if callable(value) and hasattr(value, "__wrapped__"):
        return hasattr(value, "cache_info")  # functools.lru_cache holds a cache
    return True


def _library_modules():
    for package_name in ("gnnlab.ops", "gnnlab.nn"):
        package = importlib.import_module(package_name)
        yield package
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            yield importlib.import_module(info.name)


def _assigned_names(tree: ast.Module) -> set[str]:
    """Names a module binds by assignment at its top level (not imports, functions or classes)."""
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


@pytest.mark.parametrize("module", list(_library_modules()), ids=lambda m: m.__name__)
def test_no_module_level_mutable_state(module):
    tree = ast.parse(inspect.getsource(module))
    values = {name: getattr(module, name) for name in _assigned_names(tree) if name != "__all__"}
    mutable = {name: type(value).__name__ for name, value in values.items() if _mutable(value)}
    assert not mutable, f"{module.__name__} holds module-level mutable state: {mutable}"
    rebinds = [node.lineno for node in ast.walk(tree) if isinstance(node, (ast.Global, ast.Nonlocal))]
    assert not rebinds, f"{module.__name__} rebinds module names (global/nonlocal) at lines {rebinds}"


def test_mutable_state_check_is_not_vacuous():
    assert _mutable({}) and _mutable([]) and _mutable(set()) and _mutable(object())
    assert not _mutable((1, "a")) and not _mutable(types.MappingProxyType({"a": 1})) and not _mutable(len)


@pytest.mark.parametrize("module", [name for name, _ in _modules() if not name.endswith("__main__")])
def test_every_exported_name_exists(module):
    """``__all__`` lists only names the module has, so ``from module import *`` works."""
    mod = importlib.import_module(module)
    missing = [name for name in getattr(mod, "__all__", ()) if not hasattr(mod, name)]
    assert not missing, f"{module}.__all__ names what it does not define: {missing}"
