"""The labs' checker: run a student's answer against the reference on seeded cases, say what is wrong.

An :class:`Exercise` holds a reference (a function, or a value computed by a function from the
course's formula: nothing is typed in) and a list of seeded :class:`Case` s, ordinary ones and edge
cases. :func:`run` calls the student's function and the reference on separate copies of each case's
arguments (one deep copy per side, so neither sees what the other did to its inputs), fails an answer
that changed its arguments in place (the references never do: a caller's tensor must not change
under it), and compares the results with :func:`compare`:

* tensors and arrays: type, shape, dtype, then values within ``rtol``/``atol``;
* numbers, strings, booleans, ``None``; tuples, lists and dicts element by element.

A failure names the exercise, the case and what differs -- the type, the shape, the dtype, the place
and size of the largest error -- but never the expected values, so a check cannot be used to read the
answer. Why not an existing grader: see :mod:`neuraltext.labs`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["Case", "Exercise", "CheckFailed", "compare", "run", "verdict", "state", "changed_in_place"]


class CheckFailed(AssertionError):
    """A check did not pass. In a notebook only the message is shown, not a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for a custom traceback
        return ["\x1b[31m✗ " + str(self) + "\x1b[0m"]


@dataclass(frozen=True)
class Case:
    """One call: ``name`` says what it tests (shown in messages); ``args``/``kwargs`` are the inputs."""

    name: str
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Exercise:
    """One exercise of a chapter.

    ``reference(*args, **kwargs)`` is the answer for a function exercise; a value exercise has
    ``cases=()`` and ``reference()`` computes the value. ``rtol``/``atol`` are the tolerances of
    :func:`compare`. ``judge(got, case)``, when given, replaces the comparison with the reference (for
    answers that are random draws, checked by their statistics); it returns ``None`` or a message.
    """

    id: str
    title: str
    reference: Callable[..., Any]
    cases: Sequence[Case] | Callable[[], Sequence[Case]] = ()
    rtol: float = 1e-5
    atol: float = 1e-6
    judge: Callable[[Any, Case], str | None] | None = None
    hint: str = ""

    @property
    def is_value(self) -> bool:
        return not self.cases and self.judge is None

    def all_cases(self) -> list[Case]:
        cases = self.cases() if callable(self.cases) else self.cases
        return list(cases)


def _kind(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return "torch.Tensor"
    if isinstance(x, np.ndarray):
        return "numpy.ndarray"
    return type(x).__name__


def _largest_error(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> str | None:
    """None when close; otherwise where the largest error is and how large (never the values)."""
    got, expected = got.astype(np.float64), expected.astype(np.float64)
    same_nan = np.isnan(got) & np.isnan(expected)
    same_inf = np.isinf(expected) & (got == expected)
    with np.errstate(invalid="ignore"):  # inf - inf where both are -inf: set to 0 just below
        err = np.where(same_nan | same_inf, 0.0, np.abs(got - expected))
    err = np.where(np.isnan(err), np.inf, err)
    bad = err > atol + rtol * np.abs(np.where(np.isfinite(expected), expected, 0.0))
    if not bad.any():
        return None
    where = np.unravel_index(int(np.argmax(np.where(bad, err, -1.0))), err.shape) if err.ndim else ()
    size = float(err[where]) if err.ndim else float(err)
    place = f" at index {tuple(int(i) for i in where)}" if err.ndim else ""
    what = "a NaN or infinity where a finite value was expected" if math.isinf(size) else f"off by {size:.3g}"
    return f"{int(bad.sum())} of {bad.size} values differ; the largest is {what}{place} (tolerance {atol:g} + {rtol:g} x |expected|)"


def compare(got: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-6, where: str = "the result") -> str | None:
    """``None`` if ``got`` matches ``expected``, else a message that does not reveal ``expected``'s values."""
    if isinstance(expected, (torch.Tensor, np.ndarray)):
        if type(got) is not type(expected) and not (isinstance(got, torch.Tensor) and isinstance(expected, torch.Tensor)):
            return f"{where} should be a {_kind(expected)}, got a {_kind(got)}"
        if tuple(got.shape) != tuple(expected.shape):
            return f"{where} should have shape {tuple(expected.shape)}, got {tuple(got.shape)}"
        if got.dtype != expected.dtype:
            return f"{where} should have dtype {expected.dtype}, got {got.dtype}"
        if isinstance(got, torch.Tensor):
            got, expected = got.detach().cpu(), expected.detach().cpu()
            if got.dtype == torch.bool or not (got.is_floating_point() or got.is_complex()):
                diff = int((got != expected).sum())
                return None if diff == 0 else f"{where}: {diff} of {got.numel()} entries differ"
            got, expected = got.double().numpy(), expected.double().numpy()
        elif got.dtype.kind not in "fc":
            diff = int((got != expected).sum())
            return None if diff == 0 else f"{where}: {diff} of {got.size} entries differ"
        message = _largest_error(np.asarray(got), np.asarray(expected), rtol, atol)
        return None if message is None else f"{where}: {message}"
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if type(got) is not type(expected) and not (isinstance(expected, str) and isinstance(got, str)):
            return f"{where} should be a {_kind(expected)}, got a {_kind(got)}"
        return None if got == expected else f"{where} is not right (got {got!r})"
    if isinstance(expected, (int, float, np.integer, np.floating)):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float, np.integer, np.floating)):
            return f"{where} should be a number, got a {_kind(got)}"
        message = _largest_error(np.asarray(float(got)), np.asarray(float(expected)), rtol, atol)
        return None if message is None else f"{where} is not right (got {float(got):.6g})"
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"{where} should be a dict, got a {_kind(got)}"
        if set(got) != set(expected):
            missing, extra = sorted(map(str, set(expected) - set(got))), sorted(map(str, set(got) - set(expected)))
            return f"{where} has the wrong keys (missing {missing}, unexpected {extra})"
        for key in expected:
            message = compare(got[key], expected[key], rtol, atol, f"{where}[{key!r}]")
            if message:
                return message
        return None
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return f"{where} should be a {_kind(expected)}, got a {_kind(got)}"
        if len(got) != len(expected):
            return f"{where} should have {len(expected)} elements, got {len(got)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            message = compare(g, e, rtol, atol, f"{where}[{i}]")
            if message:
                return message
        return None
    if isinstance(expected, (set, frozenset)) and not isinstance(got, (set, frozenset)):
        return f"{where} should be a {_kind(expected)}, got a {_kind(got)}"
    try:  # an array compared with a set (or any other pair) answers with an array or raises: not a verdict
        equal = bool(got == expected)
    except (ValueError, TypeError, RuntimeError):
        return f"{where} should be a {_kind(expected)}, got a {_kind(got)}"
    return None if equal else f"{where} is not right"


def _call(fn: Callable, case: Case) -> tuple[Any, tuple, dict]:
    """Call ``fn`` on a fresh deep copy of the case's inputs; return (result, args, kwargs) after the call.

    ``args`` and ``kwargs`` are copied together, so an object they share stays shared in the copy.
    """
    args, kwargs = copy.deepcopy((tuple(case.args), dict(case.kwargs)))
    return fn(*args, **kwargs), args, kwargs


def state(x: Any) -> Any:
    """What of ``x`` a function must not change: tensors and arrays as they are, a module's
    ``state_dict``, containers walked; a random generator (meant to advance) and objects that compare
    by identity map to a placeholder."""
    if isinstance(x, (torch.Tensor, np.ndarray, str, bytes, int, float, complex, bool, torch.dtype)) or x is None:
        return x
    if isinstance(x, torch.nn.Module):
        return {"state_dict": dict(x.state_dict()), "training": x.training}
    if isinstance(x, (torch.Generator, np.random.Generator)):
        return "<a random generator>"
    if isinstance(x, Mapping):
        return {k: state(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [state(v) for v in x]
    if isinstance(x, (set, frozenset)) or type(x).__eq__ is not object.__eq__:
        return x
    return f"<a {type(x).__name__}>"


def changed_in_place(case: Case, args: Sequence, kwargs: Mapping) -> str | None:
    """``None`` if ``args``/``kwargs`` (after the call) still equal the case's inputs, else which changed."""
    for i, (before, after) in enumerate(zip(case.args, args)):
        if compare(state(after), state(before), rtol=0.0, atol=0.0) is not None:
            return f"your function changed its argument {i + 1} in place (work on a copy, or build a new result)"
    for name, before in case.kwargs.items():
        if compare(state(kwargs.get(name)), state(before), rtol=0.0, atol=0.0) is not None:
            return f"your function changed its argument {name!r} in place (work on a copy, or build a new result)"
    return None


def verdict(exercise: Exercise, case: Case, got: Any, args: Sequence, kwargs: Mapping) -> str | None:
    """``None`` if the answer's result ``got`` (and its inputs after the call) pass ``case``, else why not.

    Used by :func:`run` in the student's kernel and by the grader in its own process."""
    if got is None:
        return "your function returned None (a missing `return`?)"
    moved = changed_in_place(case, args, kwargs)
    if moved:
        return moved
    if exercise.judge is not None:
        return exercise.judge(got, case)
    return compare(got, _call(exercise.reference, case)[0], exercise.rtol, exercise.atol)


def run(exercise: Exercise, answer: Any) -> str:
    """Check ``answer``; return a one-line success message or raise :class:`CheckFailed`."""
    head = f"{exercise.id} ({exercise.title})"
    hint = f" Hint: {exercise.hint}" if exercise.hint else ""
    if answer is None or answer is Ellipsis:
        raise CheckFailed(f"{head}: no answer yet.{hint}")
    if exercise.is_value:
        if callable(answer):
            raise CheckFailed(f"{head}: expected a value, got a function")
        message = compare(answer, exercise.reference(), exercise.rtol, exercise.atol, "your answer")
        if message:
            raise CheckFailed(f"{head}: {message}.{hint}")
        return f"✓ {head}: correct."
    if not callable(answer):
        raise CheckFailed(f"{head}: expected a function, got a {_kind(answer)}")
    cases = exercise.all_cases()
    for k, case in enumerate(cases, 1):
        label = f"case {k} of {len(cases)} ({case.name})"
        try:
            got, args, kwargs = _call(answer, case)
        except NotImplementedError:
            raise CheckFailed(f"{head}: not written yet (your function raised NotImplementedError).") from None
        except Exception as exc:  # the student's error, reported with its case
            raise CheckFailed(f"{head}, {label}: your function raised {type(exc).__name__}: {exc}") from None
        message = verdict(exercise, case, got, args, kwargs)
        if message:
            raise CheckFailed(f"{head}, {label}: {message}.{hint}")
    return f"✓ {head}: all {len(cases)} cases pass."
