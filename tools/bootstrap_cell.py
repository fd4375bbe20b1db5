"""The Colab bootstrap cell that every notebook starts with, generated from `_config.yml`.

    python tools/bootstrap_cell.py            # print the cell
    python tools/bootstrap_cell.py --fix      # make it the first code cell of every book/*.ipynb

The repository URL comes from `repository.url` in `_config.yml`, the one place it is written.
Each notebook's cell installs what that notebook imports: the package's core dependencies (torch,
transformers, gensim, scikit-learn, matplotlib ...) and, for the chapters that need them, its extras
(`NOTEBOOK_EXTRAS`: chapter 9 imports TRL, chapter 11 outlines). The cell also installs when the
package is there but an extra's module is missing (a Colab runtime that ran another chapter first).
The `book` extra (Jupyter Book, JupyterLab) only builds the book and would be dead weight in a kernel.
tests/test_bootstrap.py checks that every notebook starts with exactly its cell, and that the
distributions the notebook imports (directly, or through the `neuraltext` subpackages it uses) are
all among those the cell's requirement installs. tools/check_bootstrap.py (`make bootstrap-check`)
runs each cell for real, offline, in a fresh venv against the local wheel, and imports what the
notebook imports.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAGS = ["remove-input"]


def repository_url() -> str:
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    match = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", text, re.M)
    if not match:
        raise SystemExit("_config.yml has no repository.url")
    return match.group(1)


# extras a notebook needs beyond the core dependencies, and the module whose absence shows each is missing
NOTEBOOK_EXTRAS = {"09_alignment": ("align",), "11_clinical_extraction": ("llm",)}
EXTRA_PROBES = {"align": "trl", "llm": "outlines"}


def requirement(extras: tuple[str, ...] = ()) -> str:
    """The pip requirement the cell installs: `neuraltext[extras] @ git+<url>#subdirectory=companion`."""
    name = f"neuraltext[{','.join(extras)}]" if extras else "neuraltext"
    return f"{name} @ git+{repository_url()}#subdirectory=companion"


def cell_source(notebook: str | None = None) -> str:
    """The bootstrap cell of `notebook` (its file stem, e.g. "09_alignment"; None: a core-only chapter)."""
    extras = NOTEBOOK_EXTRAS.get(notebook or "", ())
    probes = ("neuraltext",) + tuple(EXTRA_PROBES[e] for e in extras)
    missing = ('importlib.util.find_spec("neuraltext") is None' if len(probes) == 1 else
               f"any(importlib.util.find_spec(m) is None for m in {probes!r})")
    return (
        "# Colab bootstrap: install the course's companion package (and what this notebook imports)\n"
        "# when it is missing, on Colab, Binder or a fresh kernel; after `make` it does nothing.\n"
        "import importlib.util, subprocess, sys\n"
        f"if {missing}:\n"
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\",\n"
        f'                    "{requirement(extras)}"], check=True)'
    )


def first_code_cell(nb: dict) -> dict | None:
    return next((c for c in nb["cells"] if c["cell_type"] == "code"), None)


def has_bootstrap(nb: dict, notebook: str | None = None) -> bool:
    cell = first_code_cell(nb)
    if cell is None:
        return False
    src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    return src.strip() == cell_source(notebook).strip()


def fix(path: Path) -> bool:
    """Make the bootstrap the first code cell of a notebook; return True if the file changed."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    if has_bootstrap(nb, path.stem):
        return False
    cell = {"cell_type": "code", "execution_count": None, "id": "bootstrap",
            "metadata": {"tags": TAGS}, "outputs": [], "source": cell_source(path.stem)}
    first = first_code_cell(nb)
    if first is not None and "importlib.util.find_spec(" in "".join(first["source"]) \
            and "neuraltext" in "".join(first["source"]):
        first.update(source=cell["source"], metadata=cell["metadata"])
    else:
        idx = nb["cells"].index(first) if first is not None else len(nb["cells"])
        nb["cells"].insert(idx, cell)
    try:  # nbformat's own writer keeps the file's layout (sources as lists of lines)
        import nbformat

        nbformat.write(nbformat.from_dict(nb), str(path))
    except ImportError:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


if __name__ == "__main__":
    if "--fix" in sys.argv:
        for nb_path in sorted((ROOT / "book").glob("*.ipynb")):
            if fix(nb_path):
                print("fixed", nb_path.relative_to(ROOT))
    else:  # python tools/bootstrap_cell.py [notebook stem]
        print(cell_source(sys.argv[1] if len(sys.argv) > 1 else None))
