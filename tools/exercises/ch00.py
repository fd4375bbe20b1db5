"""Writes chapter 0's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch00.py

The chapter had no exercises: on the first run `replace_exercises` appended the section after the
summary; later runs replace it, as for the other chapters.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import code, exercise, exercises_intro, replace_exercises, solution, solution_end, solution_start  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[2] / "book" / "00_getting_started.ipynb"

CELLS = [
    exercises_intro("Exercises 1 and 2 are", "Exercise 3 is a question."),
    code("""import torch
from torch import nn

from neuraltext import labs"""),
    exercise("ex-00-params", "Counting parameters", r"""
Write `count_parameters(model)`, the number of parameters of a PyTorch module: the sum of the sizes
(`numel()`) of all its parameter tensors, trainable or frozen,
$N = \sum_{\theta \in \text{parameters}} \prod_i \dim_i(\theta)$. A tensor that two layers share (tied
weights) counts once, and buffers (such as batch norm's running statistics) are not parameters. The
check compares it with the sum over `model.parameters()` on a few modules, among them a tied embedding
and output layer, a frozen layer, a batch norm and a module without parameters. The chapter printed
the encoder's count this way; `nn.Linear(384, 384)`, for instance, has $384 \times 384 + 384$."""),
    solution_start("ex-00-params", "`model.parameters()` already lists each parameter once, shared or not:"),
    code('''def count_parameters(model):
    """Total number of entries of the model's parameters (a shared tensor counted once)."""
    ### BEGIN SOLUTION
    return sum(p.numel() for p in model.parameters())
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("00.count_parameters", count_parameters)'),
    exercise("ex-00-cosine", "Cosine similarities", r"""
A sentence encoder such as the chapter's all-MiniLM turns each sentence into a vector; two sentences
are compared by the cosine of their vectors,
$\cos(\mathbf{a}, \mathbf{b}) = \frac{\mathbf{a} \cdot \mathbf{b}}{\lVert \mathbf{a} \rVert\, \lVert \mathbf{b} \rVert}$.
Write `cosine_matrix(a, b)` for `a` of shape `(n, d)` and `b` of shape `(m, d)`: the `(n, m)` tensor of
the cosines of every row of `a` with every row of `b`, in their dtype, with 0 where a vector is zero
(not NaN). The check compares it with `torch.nn.functional.cosine_similarity`."""),
    solution_start("ex-00-cosine", "Normalise the rows once, then a single matrix product gives every cosine:"),
    code('''def cosine_matrix(a, b):
    """(n, d) and (m, d) -> (n, m) cosine similarities; 0 for a zero vector."""
    ### BEGIN SOLUTION
    a = a / a.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    b = b / b.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    return a @ b.T
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("00.cosine_matrix", cosine_matrix)'),
    exercise("ex-00-devices", "Same seed, another device", r"""
`set_seed(42)` followed by `torch.randn(3)` gives the same three numbers every time on the CPU. Do
you get the same numbers with `torch.randn(3, device="cuda")` after the same seed? How would you
make a GPU run start from exactly the same random weights as a CPU run?"""),
    solution("ex-00-devices", r"""
No. `torch.manual_seed` seeds each device's generator, but the CPU generator (a Mersenne Twister) and
the CUDA one (Philox) are different algorithms, so the same seed gives different streams. To start
from the same numbers, draw them on the CPU and move them: `torch.randn(3).to("cuda")`, or create the
model on the CPU after `set_seed` and only then call `model.to(device)`. Even then,
some GPU kernels add numbers in a varying order, so training can drift apart later:
`set_seed(s, deterministic=True)` asks PyTorch for deterministic kernels."""),
]

if __name__ == "__main__":
    replace_exercises(NOTEBOOK, CELLS)   # appends the section: the chapter had none
