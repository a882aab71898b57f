"""The layering of shared/DESIGN.md holds (issue 16, item 1): no module imports from a
layer above its own. The layer order is read from README's ```layers block (the
developers' copy of DESIGN.md's layer list, with every module placed); every module is
imported, and every import it makes, at the top, inside a function, under
TYPE_CHECKING or through lazy("systrace.X"), is checked."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PACKAGE = SRC / "systrace"


def layer_names() -> list[tuple[str, list[str]]]:
    """[(layer, [module or package names])], top first."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```layers\n(.*?)```", readme, re.S)
    assert block, "README.md has no ```layers block"
    layers = []
    for line in block.group(1).splitlines():
        if line.strip():
            layer, *names = line.split()
            layers.append((layer, names))
    return layers


LAYERS = layer_names()


def layer_of(module: str) -> int:
    """The index (0 = top) of the longest listed name that is the module or a package above it."""
    best, best_length = -1, -1
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best_length:
                best, best_length = index, len(name)
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = sorted(module_name(path) for path in PACKAGE.rglob("*.py"))


def imported_by(path: Path) -> list[tuple[int, str]]:
    """(line, module) for each systrace module the file imports; for `from X import name`
    the submodule X.name when there is one, else X."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "lazy" \
                and node.args and isinstance(node.args[0], ast.Constant) \
                and str(node.args[0].value).split(".")[0] == "systrace":
            found.append((node.lineno, str(node.args[0].value)))  # lazy("systrace.X"): imported at first use
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "systrace"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "systrace":
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.append((node.lineno, submodule if submodule in MODULES else target))
    return found


def test_every_module_is_placed_in_a_layer_and_imports() -> None:
    unplaced = [module for module in MODULES if module != "systrace" and layer_of(module) < 0]
    assert unplaced == [], "place these in README's ```layers block"
    for module in MODULES:
        if module != "systrace.__main__":  # running it is `python -m systrace`
            importlib.import_module(module)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: module_name(path))
def test_no_module_imports_from_a_layer_above_its_own(path: Path) -> None:
    module = module_name(path)
    if module == "systrace":
        return  # the package itself (its version) sits above nothing
    own = layer_of(module)
    upward = []
    for line, target in imported_by(path):
        if target == "systrace":
            continue  # systrace.__version__
        above = layer_of(target)
        if above < own:
            upward.append(f"{path.relative_to(ROOT)}:{line}: {module} ({LAYERS[own][0]}) imports {target} "
                          f"({LAYERS[above][0]})")
    assert upward == []


def test_the_layer_check_finds_an_upward_import() -> None:
    """The check itself: policy importing the frontend would be caught."""
    assert layer_of("systrace.policy.printer") > layer_of("systrace.frontend.question")
    assert layer_of("systrace.translate.formats") > layer_of("systrace.policy.compile")  # the facts layer
    assert layer_of("systrace.translate.translator") < layer_of("systrace.policy.compile")
