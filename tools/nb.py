"""Write and execute chapter notebooks.

    python tools/nb.py execute book/03_word2vec.ipynb   # run top to bottom, save outputs in place
    python tools/nb.py execute --timeout 1800 book/04_rnn.ipynb   # per-cell limit (default 900 s)
    python tools/nb.py strip-widgets book/*.ipynb       # drop progress-bar widgets from saved outputs

From Python (e.g. a throwaway script that drafts a chapter):

    from tools.nb import md, code, write_notebook, execute
    write_notebook("book/99_demo.ipynb", [md("# Title"), code("print(1)", check=True)])
    execute("book/99_demo.ipynb")

`write_notebook` puts the Colab bootstrap cell first (tools/bootstrap_cell.py). `code(..., check=True)`
adds the `# NBVAL_CHECK_OUTPUT` marker so nbval compares that cell's output.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap_cell import TAGS, cell_source  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(text: str, check: bool = False, tags: list[str] | None = None) -> nbformat.NotebookNode:
    src = text.strip("\n")
    if check and "NBVAL_CHECK_OUTPUT" not in src:
        src = "# NBVAL_CHECK_OUTPUT\n" + src
    cell = nbformat.v4.new_code_cell(src)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def write_notebook(path: str | Path, cells: list) -> Path:
    nb = nbformat.v4.new_notebook()
    boot = nbformat.v4.new_code_cell(cell_source())
    boot.metadata["tags"] = list(TAGS)
    nb.cells = [boot, *cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    path = Path(path)
    nbformat.write(nb, path)
    return path


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def strip_widgets(nb) -> int:
    """Drop progress-bar widget outputs and widget state (they make the rendered page load scripts
    from a CDN); return how many outputs were removed. The text fallback of a bar is dropped too:
    progress output is never part of a chapter's content."""
    removed = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        keep = [o for o in cell.get("outputs", []) if WIDGET_VIEW not in o.get("data", {})]
        removed += len(cell.get("outputs", [])) - len(keep)
        cell["outputs"] = keep
    nb.metadata.pop("widgets", None)
    return removed


def execute(path: str | Path, timeout: int = 900) -> float:
    """Execute a notebook in place (working directory: its folder); return the seconds it took."""
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("NEURALTEXT_PROGRESS", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' "Loading weights" bars too
    start = time.time()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    strip_widgets(nb)
    for i, cell in enumerate(nb.cells):  # stable ids keep diffs small
        cell["id"] = f"cell-{i}"
    nbformat.write(nb, path)
    return time.time() - start


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "strip-widgets":
        for p in args[1:]:
            nb = nbformat.read(p, as_version=4)
            had_state = "widgets" in nb.metadata
            n = strip_widgets(nb)
            if n or had_state:
                nbformat.write(nb, p)
            print(f"{p}: {n} widget outputs removed")
    elif len(args) >= 2 and args[0] == "execute":
        limit = 900
        if args[1] == "--timeout":
            limit, args = int(args[2]), args[:1] + args[3:]
        for p in args[1:]:
            print(f"{p}: {execute(p, timeout=limit):.1f} s")
    else:
        print(__doc__)
