"""Grade submitted notebooks: run each one, then check every answer from the grader's own process.

    python -m neuraltext.labs.grade submissions/*.ipynb            # a table; exit 1 if any check fails
    python -m neuraltext.labs.grade --json grades.json alice/04_rnn.ipynb
    python -m neuraltext.labs.grade --whole alice/04_rnn.ipynb      # run the chapter's body too

By default only the exercises section runs (from the ``## Exercises`` heading to the end): it is
self-contained by design, so grading takes seconds and needs none of the chapter's data or weights.
The section is executed cell by cell in a fresh kernel (``nbclient``, from the book tools) with errors
allowed, so one failing exercise does not hide the others. Every cell that calls ``labs.check("<id>",
answer)`` is one graded item, and **what the cell printed does not count**: right after it runs, the
grader sends the exercise's cases (built in its own process) to the kernel, calls ``answer`` on them
there (:func:`answer_in_kernel`), reads back the results as plain JSON (:mod:`neuraltext.labs.portable`,
no pickle) and judges them in its own process with :func:`neuraltext.labs.check.verdict` -- so a
redefined ``labs.check`` or a patched checker in the notebook changes nothing. An exercise whose check
cell never ran (the kernel died or timed out before it) or is missing fails, and so does a check cell
that differs from the one handed out (``--expected-source labs/student``). The report holds the one-line
message, never the reference answer. What this does not protect against (student code runs with the
grader's permissions): see the labs guide.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import pickle
import re
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["Item", "grade_notebook", "answer_in_kernel", "main"]

CHECK_CALL = re.compile(r"labs\.check\(\s*[\"']([\w.]+)[\"']")
EXERCISES_HEADING = re.compile(r"^##\s+Exercises\s*$", re.M)
KERNEL_STOPPED = "not run (the kernel stopped before this cell)"


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


def answer_expression(source: str) -> str | None:
    """The source of the answer passed to ``labs.check("<id>", answer)`` in a check cell, or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check"
                and len(node.args) == 2 and not node.keywords):
            return ast.get_source_segment(source, node.args[1])
    return None


def answer_in_kernel(get_answer: Callable[[], Any], cases_path: str, out_path: str) -> None:
    """Run in the student's kernel: call the answer on the grader's cases, write the results as JSON.

    ``cases_path`` holds the grader's pickled ``[(args, kwargs), ...]`` (``None`` for a value
    exercise). The file written holds ``{"value": ...}``, ``{"cases": [{"got", "args", "kwargs"} or
    {"error"}, ...]}`` (it stops at the first error) or ``{"error": ...}``, encoded by
    :func:`neuraltext.labs.portable.encode`.
    """
    from neuraltext.labs.portable import encode

    def write(result: dict) -> None:
        with open(out_path, "w", encoding="utf-8") as f:
            json.dump(result, f)

    try:
        answer = get_answer()
    except Exception as exc:  # noqa: BLE001 - a missing answer is the student's error, reported
        return write({"error": f"no answer: {type(exc).__name__}: {exc}"})
    with open(cases_path, "rb") as f:
        cases = pickle.load(f)  # written by the grader a moment ago
    if cases is None:
        return write({"value": encode(answer)})
    results = []
    for args, kwargs in cases:
        try:
            got = answer(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the student's error, reported with its case
            results.append({"error": f"{type(exc).__name__}: {exc}"})
            break
        results.append({"got": encode(got), "args": encode(list(args)), "kwargs": encode(kwargs)})
    write({"cases": results})


def judge(exercise_id: str, result: dict | None) -> tuple[bool, str]:
    """Judge in this process what :func:`answer_in_kernel` wrote for ``exercise_id``."""
    from neuraltext.labs import registry
    from neuraltext.labs.check import CheckFailed, run, verdict
    from neuraltext.labs.portable import decode

    try:
        exercise = registry.get(exercise_id)
    except KeyError as exc:
        return False, str(exc)
    head = f"{exercise.id} ({exercise.title})"
    if result is None:
        return False, f"{head}: the grader got no result from the kernel"
    if "error" in result:
        return False, f"{head}: {result['error']}"
    try:
        if "value" in result:
            return True, run(exercise, decode(result["value"]))
        cases = exercise.all_cases()
        if exercise.is_value:
            return False, f"{head}: expected a value, got a function"
        for k, (case, r) in enumerate(zip(cases, result["cases"]), 1):
            label = f"case {k} of {len(cases)} ({case.name})"
            if "error" in r:
                not_written = r["error"].startswith("NotImplementedError")
                return False, f"{head}: not written yet" if not_written else f"{head}, {label}: your function raised {r['error']}"
            message = verdict(exercise, case, decode(r["got"]), decode(r["args"]), decode(r["kwargs"]))
            if message:
                return False, f"{head}, {label}: {message}."
        if len(result["cases"]) != len(cases):
            return False, f"{head}: the grader got {len(result['cases'])} results for {len(cases)} cases"
    except CheckFailed as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - a result that cannot be read is a failure, not a crash
        return False, f"{head}: the answer's result could not be read ({type(exc).__name__}: {exc})"
    return True, f"✓ {head}: all {len(cases)} cases pass."


def _grading_cell(exercise_id: str, expression: str | None, work: Path, n: int):
    """A cell that runs the answer on the grader's cases in the kernel; and where its result goes."""
    import nbformat

    from neuraltext.labs import registry

    cases_path, out_path = work / f"cases{n}.pkl", work / f"result{n}.json"
    try:
        exercise = registry.get(exercise_id)
        cases = None if exercise.is_value else [(tuple(c.args), dict(c.kwargs)) for c in exercise.all_cases()]
    except KeyError:
        cases = None
    cases_path.write_bytes(pickle.dumps(cases))
    getter = f"lambda: ({expression})" if expression else "lambda: None"
    source = (f"from neuraltext.labs.grade import answer_in_kernel as _grader_answer\n"
              f"_grader_answer({getter}, {str(cases_path)!r}, {str(out_path)!r})")
    return nbformat.v4.new_code_cell(source), out_path


def _read(path: Path) -> dict | None:
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def _execute(nb, path: Path, timeout: int, work: Path) -> dict[int, dict | None]:
    """Run the cells; after each check cell, the grader's cell. Check-cell index -> result (None: no result)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    run = copy.deepcopy(nb)  # nbclient writes each executed cell back at its index: the grader's go at the end
    client = NotebookClient(run, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    results: dict[int, dict | None] = {}
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            try:
                client.execute_cell(run.cells[index], index)
                match = CHECK_CALL.search(cell.source) if cell.cell_type == "code" else None
                if match:
                    grading, out = _grading_cell(match.group(1), answer_expression(cell.source), work, index)
                    run.cells.append(grading)
                    client.execute_cell(grading, len(run.cells) - 1)
                    results[index] = _read(out)
            except (DeadKernelError, CellTimeoutError, RuntimeError) as exc:  # the rest never runs: it fails
                print(f"{path}: execution stopped at cell {index}: {type(exc).__name__}", file=sys.stderr)
                break
    return results


def _expected_ids(path: Path, nb, expected_source: Path | None) -> dict[str, str | None]:
    """Exercise id -> its handed-out check cell's source (None when unknown): every one must be graded."""
    if expected_source is not None and (expected_source / path.name).exists():
        import nbformat

        reference = nbformat.read(expected_source / path.name, as_version=4)
        return {CHECK_CALL.search(c.source).group(1): c.source for c in reference.cells
                if c.cell_type == "code" and CHECK_CALL.search(c.source)}
    from neuraltext.labs import registry

    prefix = path.name.split("_", 1)[0]
    return dict.fromkeys(registry.exercises(prefix), None) if prefix in registry.CHAPTERS else {}


def grade_notebook(path: str | Path, timeout: int = 900, expected_source: Path | None = None,
                   whole: bool = False) -> list[Item]:
    """Execute ``path`` (its exercises section, or all of it) and return one :class:`Item` per exercise."""
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    start = exercises_start(nb)
    if not whole and start is not None:
        nb.cells = nb.cells[start:]
    with tempfile.TemporaryDirectory(prefix="neuraltext-grade-") as work:
        results = _execute(nb, path, timeout, Path(work))
    expected = _expected_ids(path, nb, expected_source)
    items = []
    for index, cell in enumerate(nb.cells):
        match = CHECK_CALL.search(cell.source) if cell.cell_type == "code" else None
        if not match:
            continue
        exercise = match.group(1)
        if index not in results:
            passed, message = False, KERNEL_STOPPED
        else:
            passed, message = judge(exercise, results[index])
        if expected.get(exercise) is not None and expected[exercise] != cell.source:
            passed, message = False, "the check cell was edited"
        items.append(Item(path.name, exercise, passed, message))
    graded = {i.exercise for i in items}
    items += [Item(path.name, e, False, "no check cell for this exercise (deleted?)") for e in expected if e not in graded]
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
