"""The Colab bootstrap cell that every notebook starts with, generated from `_config.yml`.

    python tools/bootstrap_cell.py            # print the cell
    python tools/bootstrap_cell.py --fix      # make it the first code cell of every book/*.ipynb

The repository URL comes from `repository.url` in `_config.yml`, the one place it is written.
The cell installs the package without extras: its dependencies are what the notebooks import
(torch, transformers, gensim, scikit-learn, matplotlib ...); the `book` extra (Jupyter Book,
JupyterLab) only builds the book and would be dead weight in a Colab kernel.
tests/test_bootstrap.py checks that every notebook starts with exactly this cell.
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


def cell_source() -> str:
    url = repository_url()
    return (
        "# Colab bootstrap: install the course's companion package (and only what the notebooks\n"
        "# import) when it is missing, on Colab, Binder or a fresh kernel; after `make` it does nothing.\n"
        "import importlib.util, subprocess, sys\n"
        'if importlib.util.find_spec("neuraltext") is None:\n'
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\",\n"
        f'                    "neuraltext @ git+{url}#subdirectory=companion"], check=True)'
    )


def first_code_cell(nb: dict) -> dict | None:
    return next((c for c in nb["cells"] if c["cell_type"] == "code"), None)


def has_bootstrap(nb: dict) -> bool:
    cell = first_code_cell(nb)
    if cell is None:
        return False
    src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    return src.strip() == cell_source().strip()


def fix(path: Path) -> bool:
    """Make the bootstrap the first code cell of a notebook; return True if the file changed."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    if has_bootstrap(nb):
        return False
    cell = {"cell_type": "code", "execution_count": None, "id": "bootstrap",
            "metadata": {"tags": TAGS}, "outputs": [], "source": cell_source()}
    first = first_code_cell(nb)
    if first is not None and "importlib.util.find_spec(\"neuraltext\")" in "".join(first["source"]):
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
    else:
        print(cell_source())
