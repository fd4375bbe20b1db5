"""Generate the student notebooks from the book's (instructor) notebooks: `make labs`.

    python tools/labs.py                   # book/*.ipynb -> labs/student/*.ipynb
    python tools/labs.py --check           # exit 1 if labs/student/ is not what the book generates

The book's notebooks are the instructor version. The exercises at the end of a chapter (after its
`## Exercises` heading) are in the labs form:

* an `{exercise}` directive with the statement;
* the answer cell, inside a `{solution-start}` ... `{solution-end}` pair with `:class: dropdown`, so
  the rendered book shows it collapsed; its solution lines sit between nbgrader's markers
  `### BEGIN SOLUTION` and `### END SOLUTION`;
* a check cell: `labs.check("<chapter>.<name>", answer)`.

Questions without a check get an `{exercise}` and a `{solution}` dropdown. The student version is the
same notebook with: every solution region replaced by a stub (inside a function: `raise
NotImplementedError()`; at the top level: each name the region assigns set to `None`), the solution
directives' cells removed (so the stub shows), cells tagged `solution` removed (e.g. a hidden cell that
computes the numbers a solution quotes), and no outputs at all. Everything before the exercises is
unchanged, so it runs as in the book; each blank exercise fails at its check cell.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import textwrap
from pathlib import Path

import nbformat

from neuraltext.labs.grade import CHECK_CALL, exercises_start  # noqa: F401 (also used by the tests)

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
SOLUTION_DIRECTIVE = re.compile(r"^\s*(```+|:::+)\s*\{(solution|solution-start|solution-end)\}", re.M)


def _assigned_names(code: str) -> list[str]:
    names: list[str] = []
    for node in ast.parse(code).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
        for t in targets:
            for n in ast.walk(t) if t is not None else ():
                if isinstance(n, ast.Name) and n.id not in names:
                    names.append(n.id)
    return names


def stub_solutions(source: str) -> str:
    """Replace each `### BEGIN SOLUTION` ... `### END SOLUTION` region of a code cell by a stub."""
    lines, out, region, indent = source.split("\n"), [], None, ""
    for line in lines:
        stripped = line.strip()
        if stripped == BEGIN:
            if region is not None:
                raise ValueError(f"nested {BEGIN!r} in:\n{source}")
            region, indent = [], line[: len(line) - len(line.lstrip())]
        elif stripped == END:
            if region is None:
                raise ValueError(f"{END!r} without {BEGIN!r} in:\n{source}")
            if indent:
                out += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
            else:
                names = _assigned_names(textwrap.dedent("\n".join(region)))
                out += [f"{name} = None  # YOUR ANSWER HERE" for name in names] or ["# YOUR CODE HERE"]
            region = None
        elif region is not None:
            region.append(line)
        else:
            out.append(line)
    if region is not None:
        raise ValueError(f"{BEGIN!r} without {END!r} in:\n{source}")
    return "\n".join(out)


def is_solution_cell(cell) -> bool:
    if "solution" in cell.get("metadata", {}).get("tags", []):
        return True
    return cell.cell_type == "markdown" and bool(SOLUTION_DIRECTIVE.match(cell.source))


def student_version(nb):
    """The student notebook of an instructor notebook (a new object; `nb` is not changed)."""
    student = nbformat.from_dict(nbformat.v4.new_notebook())
    student.metadata = nbformat.from_dict({k: v for k, v in nb.metadata.items() if k != "widgets"})
    student.metadata["neuraltext"] = {"student_version": True}
    for cell in nb.cells:
        if is_solution_cell(cell):
            continue
        new = nbformat.from_dict(dict(cell))
        new.metadata = nbformat.from_dict({k: v for k, v in cell.metadata.items() if k != "execution"})
        if new.cell_type == "code":
            new.source = stub_solutions(cell.source)
            new.outputs, new.execution_count = [], None
        student.cells.append(new)
    return student


def generate(book: Path = ROOT / "book", out: Path = ROOT / "labs" / "student") -> dict[Path, str]:
    """Student notebook path -> its JSON text, for every book notebook that has an exercises section."""
    result = {}
    for path in sorted(book.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if exercises_start(nb) is None:
            continue
        result[out / path.name] = nbformat.writes(student_version(nb)) + "\n"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with labs/student/ instead of writing")
    parser.add_argument("--out", type=Path, default=ROOT / "labs" / "student")
    args = parser.parse_args(argv)
    files = generate(out=args.out)
    if args.check:
        stale = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        extra = [p for p in args.out.glob("*.ipynb") if p not in files] if args.out.exists() else []
        for p in stale + extra:
            print(f"out of date: {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}")
        if stale or extra:
            print("run `make labs` to regenerate the student notebooks")
            return 1
        print(f"{len(files)} student notebooks up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for p in args.out.glob("*.ipynb"):
        if p not in files:
            p.unlink()
    for p, text in files.items():
        p.write_text(text, encoding="utf-8")
    print(f"{len(files)} student notebooks written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
