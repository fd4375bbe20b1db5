"""Grade submitted notebooks: run each one and report its exercise checks, pass or fail.

    python -m neuraltext.labs.grade submissions/*.ipynb            # a table; exit 1 if any check fails
    python -m neuraltext.labs.grade --json grades.json alice/04_rnn.ipynb
    python -m neuraltext.labs.grade --whole alice/04_rnn.ipynb      # run the chapter's body too

By default only the exercises section runs (from the ``## Exercises`` heading to the end): it is
self-contained by design, so grading takes seconds and needs none of the chapter's data or weights.
The section is executed top to bottom in a fresh kernel (``nbclient``, from the book tools) with errors
allowed, so one failing exercise does not hide the others. Every cell that calls ``labs.check("<id>",
...)`` is one graded item: it passes when the cell ran without error (a check that fails raises
:class:`~neuraltext.labs.CheckFailed`); a cell that never ran, because the kernel died or timed out,
fails. The report holds the check's one-line message, never the reference answer. What counts is the
check, not the student's text: a student who edits a check cell is seen by comparing the cell with the
student version (``--expected-source labs/student``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Item", "grade_notebook", "main"]

CHECK_CALL = re.compile(r"labs\.check\(\s*[\"']([\w.]+)[\"']")
EXERCISES_HEADING = re.compile(r"^##\s+Exercises\s*$", re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def exercises_start(nb) -> int | None:
    """Index of the markdown cell that opens the ``## Exercises`` section, or None."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and EXERCISES_HEADING.search(cell.source):
            return i
    return None


@dataclass
class Item:
    notebook: str
    exercise: str
    passed: bool
    message: str


def _message(cell) -> tuple[bool, str]:
    text, error = [], None
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            text.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            error = ANSI.sub("", " ".join(out.get("traceback", [])) or f"{out.get('ename')}: {out.get('evalue')}")
    if error is not None:
        return False, error.strip().splitlines()[-1] if error.strip() else "error"
    if cell.get("execution_count") is None:
        return False, "not run (the kernel stopped before this cell)"
    return True, "".join(text).strip().splitlines()[-1] if "".join(text).strip() else "passed"


def grade_notebook(path: str | Path, timeout: int = 900, expected_source: Path | None = None,
                   whole: bool = False) -> list[Item]:
    """Execute ``path`` (its exercises section, or all of it) and return one :class:`Item` per check cell."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    start = exercises_start(nb)
    if not whole and start is not None:
        nb.cells = nb.cells[start:]
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except (DeadKernelError, TimeoutError, RuntimeError) as exc:  # keep what ran; the rest fails
        print(f"{path}: execution stopped: {type(exc).__name__}", file=sys.stderr)
    expected = None
    if expected_source is not None and (expected_source / path.name).exists():
        reference = nbformat.read(expected_source / path.name, as_version=4)
        expected = {CHECK_CALL.search(c.source).group(1): c.source for c in reference.cells
                    if c.cell_type == "code" and CHECK_CALL.search(c.source)}
    items = []
    for cell in nb.cells:
        match = CHECK_CALL.search(cell.source) if cell.cell_type == "code" else None
        if not match:
            continue
        passed, message = _message(cell)
        if expected is not None and expected.get(match.group(1)) != cell.source:
            passed, message = False, "the check cell was edited"
        items.append(Item(path.name, match.group(1), passed, message))
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neuraltext.labs.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, help="also write the items to this JSON file")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    parser.add_argument("--whole", action="store_true", help="run the whole notebook, not only its exercises")
    parser.add_argument("--expected-source", type=Path, help="folder of the student notebooks handed out: "
                        "a check cell that differs from its original fails")
    args = parser.parse_args(argv)
    items = [item for p in args.notebooks for item in grade_notebook(p, args.timeout, args.expected_source, args.whole)]
    width = max([len(f"{i.notebook}  {i.exercise}") for i in items] + [20])
    for i in items:
        print(f"{'PASS' if i.passed else 'FAIL'}  {f'{i.notebook}  {i.exercise}':{width}}  {i.message[:120]}")
    n_pass = sum(i.passed for i in items)
    print(f"{n_pass} of {len(items)} checks pass")
    if args.json:
        args.json.write_text(json.dumps([asdict(i) for i in items], indent=1, ensure_ascii=False), encoding="utf-8")
    return 0 if items and n_pass == len(items) else 1


if __name__ == "__main__":
    sys.exit(main())
