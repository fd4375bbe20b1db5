"""The registry of the labs: which chapter module holds which exercises, looked up by id."""

from __future__ import annotations

import importlib

from neuraltext.labs.check import Exercise

__all__ = ["CHAPTERS", "get", "exercises"]

# chapter prefix of an exercise id -> module holding that chapter's EXERCISES
CHAPTERS = {f"{i:02d}": f"neuraltext.labs.ch{i:02d}" for i in range(12)} | {"A": "neuraltext.labs.chA"}


def _chapter(prefix: str) -> dict[str, Exercise]:
    if prefix not in CHAPTERS:
        raise KeyError(f"no chapter {prefix!r}; chapters are {sorted(CHAPTERS)}")
    try:
        module = importlib.import_module(CHAPTERS[prefix])
    except ModuleNotFoundError as exc:
        if exc.name == CHAPTERS[prefix]:
            return {}
        raise
    return {ex.id: ex for ex in module.EXERCISES}


def get(exercise_id: str) -> Exercise:
    """The :class:`Exercise` named ``exercise_id`` (``"<chapter>.<name>"``, e.g. ``"06.causal_attention"``)."""
    prefix = exercise_id.split(".", 1)[0]
    chapter = _chapter(prefix)
    if exercise_id not in chapter:
        raise KeyError(f"no exercise {exercise_id!r}; chapter {prefix} has {sorted(chapter)}")
    return chapter[exercise_id]


def exercises(chapter: str | None = None) -> dict[str, str]:
    """Exercise id -> title, for one chapter (``"03"``, ``"A"``) or all of them."""
    prefixes = [chapter] if chapter is not None else list(CHAPTERS)
    return {ex.id: ex.title for p in prefixes for ex in _chapter(p).values()}
