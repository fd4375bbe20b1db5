"""Write and execute chapter notebooks.

    python tools/nb.py execute book/03_word2vec.ipynb   # run top to bottom, save outputs in place
    python tools/nb.py execute --timeout 1800 book/04_rnn.ipynb   # per-cell limit (default 900 s)
    python tools/nb.py strip-widgets book/*.ipynb       # drop progress-bar widgets from saved outputs
    python tools/nb.py execute-exercises book/06_transformer.ipynb   # run only the `## Exercises` section

From Python (e.g. a throwaway script that drafts a chapter):

    from tools.nb import md, code, write_notebook, execute
    write_notebook("book/99_demo.ipynb", [md("# Title"), code("print(1)", check=True)])
    execute("book/99_demo.ipynb")

`write_notebook` puts the Colab bootstrap cell first (tools/bootstrap_cell.py). `code(..., check=True)`
tags the cell `nbval-check-output`, so nbval compares its output (a tag, not a comment the reader sees).
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
    cell = nbformat.v4.new_code_cell(text.strip("\n"))
    tags = list(tags or [])
    if check and "nbval-check-output" not in tags:
        tags.append("nbval-check-output")
    if tags:
        cell.metadata["tags"] = tags
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


# --------------------------------------------------------------------------- exercises (labs form)
def _fence(text: str, char: str = "`") -> str:
    longest = max((len(m) for m in __import__("re").findall(f"{char}{{3,}}", text)), default=2)
    return char * max(3, longest + 1)


def exercise(label: str, title: str, statement: str) -> nbformat.NotebookNode:
    """An `{exercise}` directive: the statement (a fenced code block inside is fine)."""
    if "`" in title:  # sphinx-exercise then drops the label, and later solutions lose their titles
        raise ValueError(f"no inline code in an exercise title: {title!r}")
    body = statement.strip("\n")
    f = _fence(body)
    return md(f"{f}{{exercise}} {title}\n:label: {label}\n\n{body}\n{f}")


def exercises_intro(checked: str, rest: str) -> nbformat.NotebookNode:
    """The section's opening cell: which exercises are checked (e.g. "Exercises 1 to 3 are"), how a
    check works, and what the others are (``rest``, a sentence)."""
    return md(f"""## Exercises

{checked} checked: write the answer in the cell under the statement (the solution is folded in the
book; in the student notebook the cell holds only the function's signature, or the name to set),
then run the check cell below it. The check runs your answer on seeded inputs, ordinary ones and edge
cases, compares it with the reference, and tells you the first case that differs. {rest}""")


def solution_start(label: str, text: str = "") -> nbformat.NotebookNode:
    """Opens a collapsed solution that may hold code cells (close it with `solution_end()`)."""
    return md(f"```{{solution-start}} {label}\n:class: dropdown\n```\n{text.strip(chr(10))}")


def solution_end() -> nbformat.NotebookNode:
    return md("```{solution-end}\n```")


def solution(label: str, text: str) -> nbformat.NotebookNode:
    """A collapsed solution of prose only (for a question without a check)."""
    body = text.strip("\n")
    f = _fence(body)
    return md(f"{f}{{solution}} {label}\n:class: dropdown\n\n{body}\n{f}")


def replace_exercises(path: str | Path, cells: list) -> None:
    """Replace everything from the `## Exercises` heading to the end by `cells` (which start with it);
    append them when the notebook has no such heading yet."""
    sys.path.insert(0, str(ROOT / "tools"))
    from labs import exercises_start

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    start = exercises_start(nb)
    if start is None:  # a chapter without exercises yet: the section goes at the end
        nb.cells = nb.cells + list(cells)
        nbformat.write(nb, path)
        return
    before = nb.cells[start].source.split("## Exercises", 1)[0].rstrip()
    kept = nb.cells[:start] + ([md(before)] if before else [])  # a summary sharing the heading's cell
    nb.cells = kept + list(cells)
    nbformat.write(nb, path)


def tag_solution_cell(path: str | Path, first_line: str) -> None:
    """Tag ``solution`` the one code cell of the chapter's body that starts with ``first_line`` (a hidden
    cell computing only the numbers a solution quotes), so the student notebook drops it."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(first_line)]
    if len(cells) != 1:
        raise ValueError(f"{path.name}: expected one code cell starting with {first_line!r}, found {len(cells)}")
    tags = cells[0].metadata.setdefault("tags", [])
    if "solution" not in tags:
        tags.append("solution")
        nbformat.write(nb, path)


def execute_exercises(path: str | Path, timeout: int = 900) -> float:
    """Execute only the `## Exercises` section (self-contained by design) and save its outputs."""
    from nbclient import NotebookClient

    sys.path.insert(0, str(ROOT / "tools"))
    from labs import exercises_start

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    start = exercises_start(nb)
    os.environ.setdefault("NEURALTEXT_PROGRESS", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    t0 = time.time()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        for i in range(start, len(nb.cells)):
            if nb.cells[i].cell_type == "code":
                client.execute_cell(nb.cells[i], i)
    strip_widgets(nb)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    nbformat.write(nb, path)
    return time.time() - t0


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
    elif len(args) >= 2 and args[0] == "execute-exercises":
        for p in args[1:]:
            print(f"{p}: exercises executed in {execute_exercises(p):.1f} s")
    else:
        print(__doc__)
