"""The labs: the checker's messages, every exercise's reference and cases, and the two notebook versions.

* every registered exercise passes with its reference and fails with a blank, a ``None`` and a
  slightly wrong answer (so no check is vacuous), and a failure never prints the expected values;
* every chapter notebook ends with 2-4 checked exercises in the labs form;
* the exercises section of the instructor notebook (the book's) passes every check, and that of the
  generated student notebook runs every cell but fails at each check cell -- and only there;
* ``labs/student/`` is what ``make labs`` generates from the book (no drift), without solutions or
  outputs;
* the book renders a solution as a collapsed dropdown (a one-page build with sphinx-exercise).
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from neuraltext import labs
from neuraltext.labs.check import Case, CheckFailed, Exercise, compare, run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import labs as labs_tool  # noqa: E402  (tools/labs.py)

NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
ALL = sorted(labs.exercises())


def chapter_of(path: Path) -> str:
    return path.name.split("_", 1)[0]


# --------------------------------------------------------------------------- the checker

def _square(x):
    return x * x


SQUARE = Exercise("99.square", "square a tensor", _square,
                  cases=[Case("a vector", (torch.arange(4.0),)), Case("a matrix", (torch.full((2, 3), -1.5),))])


def test_a_right_answer_passes_and_says_how_many_cases():
    assert run(SQUARE, lambda x: x ** 2) == "✓ 99.square (square a tensor): all 2 cases pass."


@pytest.mark.parametrize("answer, expected_words", [
    (lambda x: x * 2, ["case 1 of 2 (a vector)", "values differ", "index (3,)"]),
    (lambda x: (x * x).double(), ["dtype torch.float32", "got torch.float64"]),
    (lambda x: (x * x).reshape(-1), ["case 2 of 2 (a matrix)", "shape (2, 3)", "got (6,)"]),
    (lambda x: (x * x).numpy(), ["should be a torch.Tensor", "numpy.ndarray"]),
    (lambda x: x.nonexistent(), ["raised AttributeError"]),
    (lambda x: None, ["returned None"]),
])
def test_a_wrong_answer_says_which_case_and_what(answer, expected_words):
    with pytest.raises(CheckFailed) as info:
        run(SQUARE, answer)
    for words in expected_words:
        assert words in str(info.value)


def test_a_blank_function_says_not_written_yet():
    def blank(x):
        raise NotImplementedError()
    with pytest.raises(CheckFailed, match="not written yet"):
        run(SQUARE, blank)
    with pytest.raises(CheckFailed, match="no answer yet"):
        run(SQUARE, None)
    with pytest.raises(CheckFailed, match="expected a function"):
        run(SQUARE, 3.0)


def test_a_value_exercise_compares_with_a_tolerance_and_hides_the_answer():
    ex = Exercise("99.pi", "pi", lambda: float(np.pi), rtol=1e-3)
    assert run(ex, 3.1416).startswith("✓")
    with pytest.raises(CheckFailed) as info:
        run(ex, 3.0)
    assert "3.14" not in str(info.value) and "got 3" in str(info.value)


def test_compare_walks_containers_and_names_the_place():
    assert compare({"a": [1, 2.0]}, {"a": [1, 2.0]}) is None
    assert "['a'][1]" in compare({"a": [1, 2.5]}, {"a": [1, 2.0]})
    assert "missing ['b']" in compare({"a": 1}, {"a": 1, "b": 2})
    assert "3 elements" in compare([1, 2], [1, 2, 3])
    assert "NaN" in compare(torch.tensor([float("nan")]), torch.tensor([1.0]))
    assert compare(torch.tensor([float("-inf"), 1.0]), torch.tensor([float("-inf"), 1.0])) is None
    assert "entries differ" in compare(torch.tensor([True, False]), torch.tensor([True, True]))


def test_compare_answers_a_mismatched_type_with_a_message_not_an_exception():
    assert "should be a set, got a numpy.ndarray" in compare(np.arange(3), {0, 1, 2})
    assert "should be a set" in compare([0, 1, 2], {0, 1, 2})
    assert compare({2, 1}, {1, 2}) is None


def test_an_answer_that_changes_its_input_in_place_fails():
    """Each side gets its own deep copy of the inputs, and the student's copy must be unchanged after
    the call: ``x.mul_(x)`` returns the right square but changes the caller's tensor."""
    def in_place(x):
        return x.mul_(x)

    with pytest.raises(CheckFailed, match="changed its argument 1 in place"):
        run(SQUARE, in_place)
    shared = torch.arange(3.0)  # args and kwargs share a tensor: the copies must share it too
    ex = Exercise("99.shared", "x + y", lambda x, y: x + y, cases=[Case("one tensor twice", (shared,), {"y": shared})])
    assert run(ex, lambda x, y: x + y).startswith("✓")
    def bump(x, y):
        y.add_(1)  # x is the same tensor: it changes too
        return x + y - 2  # the right value: 2 (s + 1) - 2 = 2 s

    with pytest.raises(CheckFailed, match="in place"):
        run(ex, bump)


def test_a_failed_check_shows_one_line_in_a_notebook():
    assert CheckFailed("x")._render_traceback_() == ["\x1b[31m✗ x\x1b[0m"]


def test_unknown_exercises_and_chapters_are_clear_errors():
    with pytest.raises(KeyError, match="chapter 06 has"):
        labs.get("06.nope")
    with pytest.raises(KeyError, match="no chapter"):
        labs.get("42.nope")


# --------------------------------------------------------------------------- every exercise

def perturbed(value):
    """A slightly wrong answer of the same type and shape, or None when the type has no 'slightly'."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value + 0.01 * (value.abs().max() + 1)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value + 0.01 * (np.abs(value).max() + 1)
    if isinstance(value, float):
        return value * 1.05 + 0.01
    if isinstance(value, (tuple, list)) and value:
        first = perturbed(value[0])
        return None if first is None else type(value)([first, *value[1:]])
    if isinstance(value, dict) and value:
        key = next(iter(value))
        first = perturbed(value[key])
        return None if first is None else {**value, key: first}
    return None


@pytest.mark.parametrize("exercise_id", ALL)
def test_the_reference_passes_and_wrong_answers_fail(exercise_id):
    ex = labs.get(exercise_id)
    answer = ex.reference() if ex.is_value else ex.reference
    assert run(ex, answer).startswith("✓")
    with pytest.raises(CheckFailed):
        run(ex, None)
    if ex.is_value:
        wrong = perturbed(answer)
    else:
        def blank(*args, **kwargs):
            raise NotImplementedError()
        with pytest.raises(CheckFailed, match="not written yet"):
            run(ex, blank)
        first = ex.all_cases()[0]
        wrong_value = perturbed(ex.reference(*copy.deepcopy(first.args), **copy.deepcopy(dict(first.kwargs))))
        wrong = None if wrong_value is None else (lambda *a, **k: wrong_value)
    if wrong is not None:
        with pytest.raises(CheckFailed):
            run(ex, wrong)


@pytest.mark.parametrize("exercise_id", ALL)
def test_cases_are_seeded(exercise_id):
    ex = labs.get(exercise_id)
    if ex.is_value:
        assert compare(ex.reference(), ex.reference(), 0, 0) is None
        return
    for a, b in zip(ex.all_cases(), ex.all_cases()):
        assert compare(list(a.args), list(b.args), 0, 0) is None, f"{exercise_id}: case {a.name!r} is not seeded"


# --------------------------------------------------------------------------- the notebooks

def exercise_cells(nb):
    start = labs_tool.exercises_start(nb)
    assert start is not None, "no '## Exercises' section"
    return nb.cells[start:]


def check_ids(cells) -> list[str]:
    return [m for c in cells if c.cell_type == "code" for m in labs_tool.CHECK_CALL.findall(c.source)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_chapter_ends_with_checked_exercises(path):
    nb = nbformat.read(path, as_version=4)
    ids = check_ids(exercise_cells(nb))
    assert 2 <= len(ids) <= 4, f"{path.name}: {len(ids)} checked exercises, expected 2-4"
    registered = set(labs.exercises(chapter_of(path)))
    assert set(ids) <= registered, f"{path.name} checks unregistered exercises {set(ids) - registered}"
    assert registered <= set(ids), f"{path.name} does not use {registered - set(ids)}"
    for title in re.findall(r"^`{3,}\{exercise\}(.*)$", "\n".join(c.source for c in nb.cells if c.cell_type == "markdown"), re.M):
        assert "`" not in title, f"{path.name}: inline code in the exercise title {title!r} breaks sphinx-exercise's labels"
    for cell in exercise_cells(nb):
        if cell.cell_type == "code" and labs_tool.BEGIN in cell.source:
            assert labs_tool.stub_solutions(cell.source) != cell.source


def run_section(cells) -> list[tuple[int, str, Exception | None]]:
    """Execute the code cells in one fresh namespace; (index, kind, error) per code cell."""
    namespace: dict = {"__name__": "__main__"}
    results = []
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        kind = "check" if labs_tool.CHECK_CALL.search(cell.source) else "other"
        try:
            exec(compile(cell.source, f"<cell {i}>", "exec"), namespace)
            results.append((i, kind, None))
        except Exception as exc:  # noqa: BLE001 - recorded and asserted on below
            results.append((i, kind, exc))
    return results


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_instructor_passes_and_student_fails_exactly_at_the_checks(path, monkeypatch, capsys):
    monkeypatch.chdir(path.parent)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    for i, kind, error in run_section(exercise_cells(nb)):
        assert error is None, f"{path.name}, exercises cell {i} failed in the instructor version: {error!r}"
    student = labs_tool.student_version(nb)
    results = run_section(exercise_cells(student))
    for i, kind, error in results:
        if kind == "check":
            assert isinstance(error, CheckFailed), f"{path.name}: a blank exercise passed its check (cell {i}): {error!r}"
        else:
            assert error is None, f"{path.name}, student version: cell {i} (not a check) failed: {error!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_version_keeps_the_chapter_and_drops_the_solutions(path):
    nb = nbformat.read(path, as_version=4)
    student = labs_tool.student_version(nb)
    start, s_start = labs_tool.exercises_start(nb), labs_tool.exercises_start(student)
    kept = [c.source for c in nb.cells[:start] if not labs_tool.is_solution_cell(c)]
    assert [c.source for c in student.cells[:s_start]] == kept, "cells before the exercises changed"
    text = nbformat.writes(student)
    assert labs_tool.BEGIN not in text and labs_tool.END not in text
    assert not any(labs_tool.SOLUTION_DIRECTIVE.match(c.source) for c in student.cells if c.cell_type == "markdown")
    assert not re.search(r"\{dropdown\}\s*Solution|:class: dropdown", text), "a solution dropdown is left"
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code"), "outputs left"


def test_student_notebooks_are_up_to_date():
    assert labs_tool.main(["--check"]) == 0, "labs/student/ differs from what `make labs` generates"


def test_stubs():
    src = "def f(x):\n    \"\"\"Doc.\"\"\"\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n"
    assert labs_tool.stub_solutions(src) == ("def f(x):\n    \"\"\"Doc.\"\"\"\n    # YOUR CODE HERE\n"
                                             "    raise NotImplementedError()\n")
    top = "### BEGIN SOLUTION\nppl = 2 ** 1.5\nbits, nats = 1, 2\n### END SOLUTION\nprint(ppl)"
    assert labs_tool.stub_solutions(top) == ("ppl = None  # YOUR ANSWER HERE\nbits = None  # YOUR ANSWER HERE\n"
                                             "nats = None  # YOUR ANSWER HERE\nprint(ppl)")
    with pytest.raises(ValueError, match="without"):
        labs_tool.stub_solutions("### BEGIN SOLUTION\nx = 1\n")


# --------------------------------------------------------------------------- the rendered book

def test_a_solution_renders_as_a_collapsed_dropdown(tmp_path):
    sphinx = pytest.importorskip("sphinx.application")
    pytest.importorskip("sphinx_exercise")
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text("extensions = ['myst_nb', 'sphinx_exercise', 'sphinx_togglebutton']\n"
                                 "nb_execution_mode = 'off'\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# T\n\n## Exercises\n\n```{exercise} Square\n:label: ex-t\n\nWrite `f`.\n```"),
                nbformat.v4.new_markdown_cell("```{solution-start} ex-t\n:class: dropdown\n```"),
                nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION"),
                nbformat.v4.new_markdown_cell("```{solution-end}\n```")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, src / "index.ipynb")
    app = sphinx.Sphinx(str(src), str(src), str(tmp_path / "out"), str(tmp_path / "doctrees"), "html",
                        status=None, warning=None, freshenv=True)
    app.build()
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert 'class="solution dropdown admonition"' in html
    assert "### BEGIN SOLUTION" in html.split('class="solution dropdown admonition"', 1)[1]


# --------------------------------------------------------------------------- grading a submission

def _submission(tmp_path, name, cells, handed_out_cells):
    """Write a submission and the notebook handed out (in ``tmp_path/student``); grade; the items."""
    from neuraltext.labs import grade

    handed_out = tmp_path / "student"
    handed_out.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, tmp_path / name)
    nb.cells = [nbformat.v4.new_code_cell(c) for c in handed_out_cells]
    nbformat.write(nb, handed_out / name)
    out = tmp_path / f"{name}.json"
    status = grade.main([str(tmp_path / name), "--json", str(out), "--expected-source", str(handed_out), "--timeout", "120"])
    return status, {i["exercise"]: (i["passed"], i["message"]) for i in json.loads(out.read_text(encoding="utf-8"))}


def test_grading_judges_answers_itself_so_a_redefined_checker_fails(tmp_path):
    """A right answer passes; a blank fails; a wrong answer behind ``labs.check = lambda ...: print("✓")``
    fails, although its cell printed ✓ and raised nothing (the grader re-checks in its own process)."""
    pytest.importorskip("nbclient")
    right = "import torch, torch.nn.functional as F\ndef ln(x, g, b, eps=1e-5):\n    return F.layer_norm(x, x.shape[-1:], g, b, eps)"
    cheat = 'labs.check = lambda *a, **k: print("✓ 06.causal_attention: all 5 cases pass.")\ndef causal_attention(q, k, v):\n    return v'
    cells = ["from neuraltext import labs", right, 'labs.check("06.layer_norm", ln)',
             "def pos(n, d):\n    raise NotImplementedError()", 'labs.check("06.sinusoidal_positions", pos)',
             cheat, 'labs.check("06.causal_attention", causal_attention)']
    status, items = _submission(tmp_path, "06_x.ipynb", cells, cells[:5] + ["pass", cells[6]])
    assert status == 1
    assert items["06.layer_norm"][0] is True and "all 4 cases pass" in items["06.layer_norm"][1]
    assert items["06.sinusoidal_positions"][0] is False and "not written yet" in items["06.sinusoidal_positions"][1]
    assert items["06.causal_attention"][0] is False and "case 1 of" in items["06.causal_attention"][1]


def test_grading_fails_an_in_place_answer_an_edited_check_and_a_never_run_check(tmp_path):
    """An answer that changes its input in place, an edited check cell, a check cell after the kernel
    died (it never ran), and a deleted check cell: each fails."""
    pytest.importorskip("nbclient")
    in_place = ("import torch.nn.functional as F\ndef bt(r_chosen, r_rejected):\n"
                "    r_chosen.sub_(r_rejected)  # right value, but the caller's tensor changes\n"
                "    return -F.logsigmoid(r_chosen).mean()")
    cells = ["from neuraltext import labs", in_place, 'labs.check("09.bradley_terry", bt)',
             'labs.check("09.dpo_loss", lambda *a: 0.0)  # edited', "import os\nos._exit(1)",
             'labs.check("09.kl_reward", kl_reward)']
    handed_out = cells[:3] + ['labs.check("09.dpo_loss", dpo_loss)', "pass", cells[5]]
    status, items = _submission(tmp_path, "09_x.ipynb", cells, handed_out)
    assert status == 1
    assert items["09.bradley_terry"][0] is False and "in place" in items["09.bradley_terry"][1]
    assert items["09.dpo_loss"] == (False, "the check cell was edited")
    assert items["09.kl_reward"][0] is False and "not run" in items["09.kl_reward"][1]
    status, items = _submission(tmp_path, "09_y.ipynb", cells[:3], handed_out)
    assert items["09.bradley_terry"][0] is False and not items["09.dpo_loss"][0] and not items["09.kl_reward"][0]
    assert "deleted" in items["09.kl_reward"][1]
