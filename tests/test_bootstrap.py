"""Every chapter notebook starts with the same Colab bootstrap cell, generated from _config.yml."""

import ast
import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import bootstrap_cell  # noqa: E402
import check_bootstrap  # noqa: E402

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
import importlib.metadata as md  # noqa: E402
import tomllib  # noqa: E402
from functools import lru_cache  # noqa: E402

from packaging.requirements import Requirement  # noqa: E402

# the ast readers live in tools/check_bootstrap.py, which also runs each cell for real (make bootstrap-check)
_imports = check_bootstrap.imported_names
_package_imports = check_bootstrap.package_imports


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


# --- tools/check_bootstrap.py (make bootstrap-check): the parts that need no network -----------------------
def _pip_args(source: str, missing: str) -> list:
    """The argument list the cell `source` gives pip when the module `missing` is absent (pip not run)."""
    import importlib.util
    import subprocess

    calls, real_find_spec, real_run = [], importlib.util.find_spec, subprocess.run
    importlib.util.find_spec = lambda name, *a: None if name == missing else real_find_spec(name, *a)
    subprocess.run = lambda args, **k: calls.append((args, k))
    try:
        exec(source, {})
    finally:
        subprocess.run, importlib.util.find_spec = real_run, real_find_spec
    assert len(calls) == 1 and calls[0][1] == {"check": True}, calls
    return calls[0][0]


@pytest.mark.parametrize("stem", ["01_tokens", "09_alignment", "11_clinical_extraction"])
def test_offline_cell_points_the_same_cell_at_the_local_wheel(stem, tmp_path):
    extras = bootstrap_cell.NOTEBOOK_EXTRAS.get(stem, ())
    wheel, wheelhouse = tmp_path / "neuraltext-0.1.0-py3-none-any.whl", tmp_path / "wheelhouse"
    source = bootstrap_cell.cell_source(stem)
    offline = check_bootstrap.offline_cell(source, extras, wheel, wheelhouse)
    before, after = _pip_args(source, "neuraltext"), _pip_args(offline, "neuraltext")
    name = "neuraltext" + (f"[{','.join(extras)}]" if extras else "")
    local = f"{name} @ file://{wheel}"
    # only the requirement changes, and the two offline options come right before it
    assert before[-1] == bootstrap_cell.requirement(extras)
    assert after == before[:-1] + ["--no-index", "--find-links", str(wheelhouse), local]
    assert "git+" not in offline and bootstrap_cell.repository_url() not in offline
    # the probes (which modules trigger the install) are the cell's own
    probes = ("neuraltext",) + tuple(bootstrap_cell.EXTRA_PROBES[e] for e in extras)
    assert all(_pip_args(offline, m) == after for m in probes)


def test_offline_cell_refuses_a_cell_that_does_not_install_the_spec(tmp_path):
    with pytest.raises(ValueError, match=r"neuraltext\[llm\] @ git\+"):
        check_bootstrap.offline_cell(bootstrap_cell.cell_source("09_alignment"), ("llm",), tmp_path / "w.whl", tmp_path)


def test_install_specs_group_every_notebook_once():
    specs = check_bootstrap.install_specs(NOTEBOOKS)
    assert sorted(s for stems in specs.values() for s in stems) == sorted(p.stem for p in NOTEBOOKS)
    assert specs[("align",)] == ["09_alignment"] and specs[("llm",)] == ["11_clinical_extraction"]
    assert "01_tokens" in specs[()]
    assert check_bootstrap.spec_name(("align",)) == "neuraltext[align]"


def test_offline_env_keeps_this_machines_pip_configuration_out(monkeypatch, tmp_path):
    monkeypatch.setenv("PIP_FIND_LINKS", "/somewhere")
    monkeypatch.setenv("PIP_INDEX_URL", "https://example.invalid/simple")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = check_bootstrap.offline_env(tmp_path / "venv")
    assert not any(k.startswith("PIP_") and k not in {"PIP_CONFIG_FILE", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_INPUT"}
                   for k in env), env
    assert env["PIP_CONFIG_FILE"] == os.devnull and "PYTHONPATH" not in env
    assert env["PATH"].startswith(str(tmp_path / "venv" / "bin"))


def test_the_wheelhouse_pins_torch_to_the_constraints(tmp_path):
    cmd = check_bootstrap.download_command(tmp_path / "n.whl", tmp_path / "wh", ["align", "llm"], "9.9.9")
    assert cmd[3] == "download" and "torch==9.9.9" in cmd
    assert cmd[cmd.index("-c") + 1] == str(check_bootstrap.CONSTRAINTS)
    assert f"neuraltext[align,llm] @ file://{tmp_path / 'n.whl'}" in cmd
    assert check_bootstrap.torch_pin() == re.search(r"^torch==(\S+)", check_bootstrap.CONSTRAINTS.read_text(), re.M)[1]


def test_import_statements_follow_the_package_and_skip_optional_ones():
    # chapter 9 and 11 import TRL and outlines only inside neuraltext functions: the check must run them
    assert "import trl" in check_bootstrap.notebook_statements(ROOT / "book" / "09_alignment.ipynb")
    eleven = check_bootstrap.notebook_statements(ROOT / "book" / "11_clinical_extraction.ipynb")
    assert "import outlines" in eleven and "from distributed import Client, LocalCluster" in eleven
    assert "import trl" not in check_bootstrap.notebook_statements(ROOT / "book" / "01_tokens.ipynb")
    source = "import a, b.c as d\ntry:\n    import e\nexcept ImportError:\n    e = None\nfrom f.g import h\n%matplotlib inline\n"
    assert [ast.unparse(n) for n in check_bootstrap.import_nodes(source)] == [
        "import a", "import b.c as d", "from f.g import h"]
    assert check_bootstrap.imported_names(source) == {"a", "b.c", "f"}
