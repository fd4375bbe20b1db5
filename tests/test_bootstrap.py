"""Every chapter notebook starts with the same Colab bootstrap cell, generated from _config.yml."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import bootstrap_cell  # noqa: E402

NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "book/ has no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_starts_with_bootstrap(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert bootstrap_cell.has_bootstrap(nb, path.stem), (
        f"{path.name}: the first code cell is not the bootstrap cell; run `python tools/bootstrap_cell.py --fix`")


def test_bootstrap_names_the_configured_repository():
    assert bootstrap_cell.repository_url() in bootstrap_cell.cell_source()
    assert "find_spec(\"neuraltext\")" in bootstrap_cell.cell_source()


def test_bootstrap_does_nothing_when_installed():
    # Executing it here (neuraltext importable) must not try to install anything.
    calls = []
    namespace = {}
    import subprocess

    original = subprocess.run
    subprocess.run = lambda *a, **k: calls.append(a)
    try:
        exec(bootstrap_cell.cell_source(), namespace)
    finally:
        subprocess.run = original
    assert calls == []


def test_fix_inserts_the_cell(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# T"},
                    {"cell_type": "code", "metadata": {}, "source": "print(1)", "outputs": [],
                     "execution_count": None}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "x.ipynb"
    p.write_text(json.dumps(nb))
    assert bootstrap_cell.fix(p)
    fixed = json.loads(p.read_text())
    assert bootstrap_cell.has_bootstrap(fixed)
    source = fixed["cells"][2]["source"]
    assert (source if isinstance(source, str) else "".join(source)) == "print(1)"
    assert not bootstrap_cell.fix(p)


def test_bootstrap_installs_no_book_tooling():
    # Colab needs what the notebooks import, not Jupyter Book or JupyterLab (the `book` extra).
    source = bootstrap_cell.cell_source()
    assert "neuraltext @ git+" in source
    assert "[book]" not in source and "jupyter" not in source.lower()


# --- the cell installs what its notebook imports -------------------------------------------------
# Read offline: the notebook's imports and those of the neuraltext subpackages it uses (ast), mapped to
# distributions with importlib.metadata, must lie in the requirement closure of what the cell installs
# (neuraltext's own requirements read from companion/pyproject.toml, the rest from installed metadata).
# An import guarded by `except ImportError` is optional and skipped.
import ast  # noqa: E402
import importlib.metadata as md  # noqa: E402
import re  # noqa: E402
import tomllib  # noqa: E402
from functools import lru_cache  # noqa: E402

from packaging.requirements import Requirement  # noqa: E402

PACKAGE = ROOT / "companion" / "src" / "neuraltext"


def _imports(source: str) -> set[str]:
    """Top-level names imported by `source`, except those inside `try: ... except ImportError`."""
    source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    tree = ast.parse(source)
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in {"ImportError", "ModuleNotFoundError"}
                for h in node.handlers):
            optional |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module if node.module.startswith("neuraltext") else node.module.split(".")[0])
            if node.module == "neuraltext":
                names |= {f"neuraltext.{a.name}" for a in node.names}
    return names


def _package_imports(module: str, seen: set[str]) -> set[str]:
    """Third-party top-level names that `neuraltext.<...>` imports, following neuraltext's own imports."""
    parts = module.split(".")[1:]
    path = PACKAGE.joinpath(*parts)
    # a package runs its __init__ (which imports its modules: followed below); a module, its file
    files = [path / "__init__.py"] if path.is_dir() else [path.with_suffix(".py")]
    found = set()
    for file in files:
        if not file.exists() or file in seen:
            continue
        seen.add(file)
        for name in _imports(file.read_text(encoding="utf-8")):
            if name.startswith("neuraltext"):
                found |= _package_imports(name, seen)
            else:
                found.add(name.split(".")[0])
        # relative imports (from .x import y / from ..x import y)
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = file.parent
                for _ in range(node.level - 1):
                    base = base.parent
                target = ".".join(("neuraltext",) + base.relative_to(PACKAGE).parts
                                  + ((node.module,) if node.module else ()))
                found |= _package_imports(target.rstrip("."), seen)
    return found


def _closure(requirements: list[str], extras: set[str]) -> set[str]:
    """Distribution names (normalised) that installing `requirements` brings in."""
    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731
    todo, done = [Requirement(r) for r in requirements], set()
    while todo:
        req = todo.pop()
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
            continue
        name = norm(req.name)
        if name in done:
            continue
        done.add(name)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        for sub in dist.requires or []:
            sub_req = Requirement(sub)
            if sub_req.marker is None or any(sub_req.marker.evaluate({"extra": e}) for e in req.extras):
                todo.append(sub_req)
    return done


@lru_cache(maxsize=None)
def _packages_distributions() -> dict:
    return md.packages_distributions()


@lru_cache(maxsize=None)
def _installed_by_cell(stem: str) -> set[str]:
    project = tomllib.loads((ROOT / "companion" / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = bootstrap_cell.NOTEBOOK_EXTRAS.get(stem, ())
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    return _closure(requirements, set())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_bootstrap_installs_what_the_notebook_imports(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"][1:]  # the bootstrap itself aside
    names = set()
    for cell in cells:
        names |= _imports(cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"]))
    third_party = set()
    for name in names:
        if name.startswith("neuraltext"):
            third_party |= _package_imports(name, set())
        else:
            third_party.add(name.split(".")[0])
    third_party -= set(sys.stdlib_module_names) | {"neuraltext"}
    dists_of = _packages_distributions()
    installed = _installed_by_cell(path.stem)
    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731
    missing = {m: dists_of.get(m, [m]) for m in third_party
               if not any(norm(d) in installed for d in dists_of.get(m, [m]))}
    assert not missing, (f"{path.name} imports {sorted(missing)} (distributions {missing}), which its bootstrap "
                         f"cell does not install: add the extra to tools/bootstrap_cell.NOTEBOOK_EXTRAS")


def test_the_closure_check_sees_a_missing_extra():
    # chapter 11 without the `llm` extra would lack outlines: the check must say so
    assert "outlines" in _closure(["neuraltext[llm]"], set()) or "outlines" in _installed_by_cell("11_clinical_extraction")
    assert "outlines" not in _installed_by_cell("01_tokens")
    assert "outlines" in _package_imports("neuraltext.clinical", set())


def test_cell_installs_the_extra_when_only_its_module_is_missing():
    calls = []
    original = subprocess_run = __import__("subprocess").run
    import importlib.util

    real_find_spec = importlib.util.find_spec
    importlib.util.find_spec = lambda name, *a: None if name == "trl" else real_find_spec(name, *a)
    __import__("subprocess").run = lambda args, **k: calls.append(args)
    try:
        exec(bootstrap_cell.cell_source("09_alignment"), {})
    finally:
        __import__("subprocess").run = original
        importlib.util.find_spec = real_find_spec
    assert calls and calls[0][-1].startswith("neuraltext[align] @ git+"), calls
    del subprocess_run
