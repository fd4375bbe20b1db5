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
    assert bootstrap_cell.has_bootstrap(nb), (
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
