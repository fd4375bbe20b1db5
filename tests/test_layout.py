"""The package's layout is the book's table of contents, and its imports keep it that way.

The imports of every module of ``neuraltext`` are read with ``ast`` (those inside functions too:
a lazy import is still an arrow between two modules), and the graph must have

* no circle;
* no arrow down the book: the ground (:data:`GROUND`) imports no chapter and no fast path, a fast
  path imports only the ground, and a chapter imports only the ground, the fast paths and *earlier*
  chapters (the use cases, 10 and 11, sit on top; the labs above everything);
* no module of a subpackage importing its own package's ``__init__`` (which imports every module of
  it: the quickest way to a circle).

It also holds the size rules (every module within ~400 lines, every function within ~60) and the
notebooks' side: each chapter's first import cell uses at most three ``neuraltext`` namespaces, and
no cell shows nbval's check marker as a comment (it is the cell tag ``nbval-check-output``).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "companion" / "src"
PACKAGE = SRC / "neuraltext"
BOOK = ROOT / "book"

#: what every chapter may use: it knows no chapter
GROUND = ("utils", "vocab", "data", "weights", "training", "plot", "diagrams")
#: the fast paths of the performance appendix: called by the chapters, they import only the ground
FAST = ("fast",)
#: the book's order: a chapter may import the ones before it
CHAPTERS = ("tokenize", "cooccurrence", "word2vec", "rnn", "seq2seq", "transformer", "bert", "gpt", "align",
            "family", "clinical")
#: the exercises' references: they may import any chapter
TOP = ("labs",)

MAX_MODULE_LINES = 420  # "about 400"
MAX_FUNCTION_LINES = 62  # "about 60"
MAX_NAMESPACES = 3


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def imports_of(name: str) -> set[str]:
    """The package modules that module ``name`` imports, resolved to modules (``from a import b``
    is an arrow to ``a.b`` when ``a.b`` is a module, else to ``a``)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    here = name if is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # ``import neuraltext.x.y`` of a name inside y
                target = target.rpartition(".")[0]
            if target.startswith("neuraltext") and target != name:
                found.add(target)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def area(name: str) -> str:
    """The top-level part of the package a module belongs to: ``neuraltext.bert.model`` -> ``bert``."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def rank(name: str) -> float:
    """Where a module sits: ground 0, fast paths 0.5, chapters 1..11 in the book's order, labs 99."""
    a = area(name)
    if a in GROUND or a == "":
        return 0
    if a in FAST:
        return 0.5
    if a in CHAPTERS:
        return 1 + CHAPTERS.index(a)
    if a in TOP:
        return 99
    raise AssertionError(f"{name}: {a!r} is in no layer of tests/test_layout.py; add it to one")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph``, as a list of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if state.get(nxt) is None and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None and (cycle := visit(node)):
            return cycle
    return None


def forbidden_arrows(graph: dict[str, set[str]]) -> list[str]:
    """Arrows the layout forbids, as ``a -> b (why)``."""
    bad = []
    for a, targets in graph.items():
        for b in sorted(targets):
            ra, rb = rank(a), rank(b)
            if area(a) and area(a) == area(b):
                if is_package(b) and not is_package(a):
                    bad.append(f"{a} -> {b} (a module importing its own package's __init__)")
                continue
            if rb > ra or (ra == rb == 0.5):
                bad.append(f"{a} -> {b} ({area(a) or 'neuraltext'} may not import {area(b)})")
    return bad


def test_layout_rules_catch_a_circle_and_a_backward_arrow():
    """The checks themselves: a made-up graph with a circle and an arrow from a chapter to a later one."""
    graph = {"neuraltext.rnn.cells": {"neuraltext.seq2seq.model"}, "neuraltext.seq2seq.model": {"neuraltext.rnn.cells"},
             "neuraltext.utils": set()}
    assert find_cycle(graph) is not None
    assert forbidden_arrows(graph) == ["neuraltext.rnn.cells -> neuraltext.seq2seq.model (rnn may not import seq2seq)"]
    assert forbidden_arrows({"neuraltext.data.dates": {"neuraltext.tokenize.bpe"}})  # the ground knows no chapter
    assert forbidden_arrows({"neuraltext.fast.word2vec": {"neuraltext.word2vec.model"}})  # nor does a fast path
    assert forbidden_arrows({"neuraltext.bert.finetune": {"neuraltext.bert"}})  # own package's __init__
    assert not forbidden_arrows({"neuraltext.word2vec.model": {"neuraltext.fast.word2vec", "neuraltext.vocab"},
                                 "neuraltext.clinical.llm": {"neuraltext.gpt.llama"}})
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_circle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_no_import_goes_against_the_layout():
    assert forbidden_arrows(GRAPH) == []


def test_every_module_is_in_a_layer():
    for name in MODULES:
        rank(name)


def code_lines(node: ast.FunctionDef) -> int:
    """A function's length without its docstring: the lines a reader follows (signature included)."""
    n = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        n -= first.end_lineno - first.lineno + 1
    return n


def test_code_lines_leave_out_the_docstring():
    fn = ast.parse('def f(x):\n    """Line one.\n\n    Line three.\n    """\n    y = x\n    return y\n').body[0]
    assert code_lines(fn) == 3


def test_modules_and_functions_stay_readable():
    long_modules = {name: n for name, p in MODULES.items()
                    if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long_modules == {}, f"modules over ~400 lines: {long_modules}"
    long_functions = []
    for name, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = code_lines(node)
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name} ({n} lines)")
    assert long_functions == [], f"functions over ~60 lines: {long_functions}"


def test_no_module_left_under_an_old_name():
    """The flat names before the subpackages (nothing was released, so no shims)."""
    old = ["align_sft", "align_dpo", "align_ppo", "align_reward", "align_eval", "bert_finetune",
           "bert_pretraining", "rnn_fast", "rnn_torch", "word2vec_fast", "word2vec_eval", "seq2seq_train",
           "pretrained", "e5", "train", "checkpoint", "distributed", "counts", "svd", "attention", "generate",
           "llama", "lm", "usecases"]
    present = [n for n in old if (PACKAGE / f"{n}.py").exists() or (PACKAGE / n).is_dir()]
    assert present == []


# ------------------------------------------------------------------------------ the notebooks
def _code_cells(nb_path: Path) -> list[dict]:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def namespaces(source: str) -> set[str]:
    """The ``neuraltext`` namespaces a cell imports from: ``from neuraltext import bert, utils`` and
    ``from neuraltext.bert import X`` both count ``bert``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "neuraltext":
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names
                      if a.name.startswith("neuraltext.")}
    return found


NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_import_cell_uses_at_most_three_namespaces(nb_path):
    cells = [c for c in _code_cells(nb_path) if "neuraltext" in "".join(c["source"])
             and "remove-input" not in c.get("metadata", {}).get("tags", [])]
    assert cells, f"{nb_path.name} imports nothing from neuraltext"
    used = namespaces("".join(cells[0]["source"]))
    assert 1 <= len(used) <= MAX_NAMESPACES, f"{nb_path.name}'s first import cell uses {sorted(used)}"


def test_namespaces_counts_subpackages_once():
    assert namespaces("from neuraltext import clinical, utils\nfrom neuraltext.clinical import KEYS") == {
        "clinical", "utils"}
    assert namespaces("import neuraltext.bert.model as m\nfrom neuraltext.weights import resolve") == {
        "bert", "weights"}


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_shows_test_machinery(nb_path):
    for cell in _code_cells(nb_path):
        assert "NBVAL_" not in "".join(cell["source"]), (
            f"{nb_path.name}: nbval's marker as a comment; use the cell tag nbval-check-output")
