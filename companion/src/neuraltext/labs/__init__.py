"""Labs: check a student's answer to a chapter's exercise against the course's reference.

    from neuraltext import labs
    labs.check("03.negative_sampling_loss", my_loss)   # prints ✓ ... or raises CheckFailed
    labs.exercises("03")                                # the chapter's exercise ids and titles

Each chapter's exercises live in ``neuraltext.labs.chNN`` (``chA`` for the appendix): the reference
(the package's own function, or a value computed from the course's formula) and the seeded cases,
ordinary and edge cases. The checker (:mod:`neuraltext.labs.check`) runs the student's function and
the reference on copies of the same inputs and reports the first case that differs -- its name, the
type, shape, dtype, or where and by how much the values differ -- without printing the expected
values. A failed check raises :class:`CheckFailed` (an ``AssertionError``), so a notebook run by
nbval, or a grading script, stops there.

**Why our own checker rather than nbgrader or otter-grader** (both on PyPI). The check has to run
where the student is -- in Colab, from ``pip install`` of this package -- with instant feedback, and
the same call has to serve the instructor's CI. nbgrader 0.9.6 installs here, but grades through a
course directory, a gradebook database and hidden test cells that the student never runs; otter-grader
7.0.0 does not install beside this project's pins (it needs ``wrapt<2``; we have 2.x), and its test
files print the expected value of a failing doctest. We keep nbgrader's convention for marking
solutions (``### BEGIN SOLUTION`` / ``### END SOLUTION``), so an instructor who prefers nbgrader can
still strip our notebooks with it; ``tools/labs.py`` (``make labs``) generates the student notebooks.
"""

from __future__ import annotations

from neuraltext.labs.check import Case, CheckFailed, Exercise, compare, run
from neuraltext.labs.registry import CHAPTERS, exercises, get

__all__ = ["check", "exercises", "get", "Case", "Exercise", "CheckFailed", "compare", "CHAPTERS"]


def check(exercise_id: str, answer) -> None:
    """Check ``answer`` (a function, or a value) for ``exercise_id``; print ✓ or raise :class:`CheckFailed`."""
    print(run(get(exercise_id), answer))
