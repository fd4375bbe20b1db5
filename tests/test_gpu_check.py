"""`make gpu-check` (tools/gpu_check.py) without a GPU: its message and exit status, that its steps
are the ones the tests parametrise, and, simulated on the CPU, what would break only on a GPU
(tensors created on the wrong device, host syncs inside forward)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils._pytree import tree_map

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import gpu_check  # noqa: E402

sys.path.remove(str(ROOT / "tools"))


def test_without_a_gpu_it_says_so_and_exits_non_zero():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py")], capture_output=True,
                          text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 2
    assert gpu_check.NO_CUDA in proc.stderr
    assert "-- " not in proc.stdout        # nothing ran


def test_make_target_runs_the_script():
    # under `make test` the parent's MAKELEVEL turns on make's directory lines (-w): drop the make variables
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(["make", "-n", "--no-print-directory", "gpu-check"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert "tools/gpu_check.py" in out.stdout.splitlines()[-1]


def test_the_device_fixture_adds_the_parameter_pytest_k_selects(monkeypatch):
    """The tests step runs `pytest -k cuda`: on a GPU machine conftest's device fixture has a
    'cuda' parameter (and the cuda marker is a keyword too)."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import conftest
    finally:
        sys.path.remove(str(ROOT / "tests"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert "cuda" in conftest._device_names()
    command = gpu_check.TESTS_COMMAND
    assert command[command.index("-k") + 1] == "cuda" and "tests" in command


def test_amp_families_are_the_ones_the_amp_test_parametrises():
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import test_distributed
    finally:
        sys.path.remove(str(ROOT / "tests"))
    mark = next(m for m in test_distributed.test_bf16_autocast_trains_every_chapter_model.pytestmark
                if m.name == "parametrize")
    assert [name for name, _ in gpu_check.amp_families()] == mark.kwargs["ids"]
    assert [build for _, build in gpu_check.amp_families()] == list(mark.args[1])


@pytest.mark.parametrize("family", ["rnn_lm", "seq2seq", "transformer", "bert", "gpt"])
def test_each_family_trains_a_few_amp_steps_with_the_loss_falling(family):
    """The amp step's check on the CPU (bfloat16 autocast): finite, falling loss in AMP_STEPS steps."""
    build = dict(gpu_check.amp_families())[family]
    summary = gpu_check.train_family(build, "bfloat16", device="cpu")
    first, last = (float(x) for x in summary.split(" -> "))
    assert last < first


def test_a_loss_that_does_not_fall_is_reported():
    class Flat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x.sum() + 0 * self.w.sum()

    with pytest.raises(AssertionError, match="loss did not fall in bfloat16"):
        gpu_check.train_family(lambda: (Flat(), lambda m, b: m(b), [torch.ones(2)]), "bfloat16", device="cpu")


def test_the_table_lists_every_step_with_its_time():
    table = gpu_check.format_table([("a", True, 1.2, "fine"), ("b", False, 30.0, "broke")])
    assert "| a | passed | 1 | fine |" in table and "| b | FAILED | 30 | broke |" in table


# ----------------------------------------------------- what only a GPU would show, on the CPU
# On the meta device every tensor has a device and a shape but no data: a tensor created on the CPU
# inside forward (torch.arange(T) without device=) meets the meta tensors and raises, as it would
# meet CUDA tensors on a GPU; reading a value back (.item(), bool(tensor), a Python `if` on a
# tensor), which on a GPU makes the host wait for the device, raises too.
SYNC_IN_FORWARD: dict[str, str] = {}  # family -> the known host sync in its forward (none left)


@pytest.mark.parametrize("family", [
    pytest.param(f, marks=pytest.mark.xfail(reason=SYNC_IN_FORWARD[f], strict=True, raises=RuntimeError))
    if f in SYNC_IN_FORWARD else f
    for f in ["rnn_lm", "seq2seq", "transformer", "bert", "gpt"]])
def test_forward_and_backward_create_nothing_off_the_device_and_read_nothing_back(family):
    build = dict(gpu_check.amp_families())[family]
    model, loss_fn, batches = build()
    model = model.to("meta")
    batch = tree_map(lambda t: t.to("meta") if isinstance(t, torch.Tensor) else t, batches[0])
    loss = loss_fn(model, batch)
    loss.backward()
    assert loss.device.type == "meta"
    assert all(p.grad is None or p.grad.device.type == "meta" for p in model.parameters())


def test_word2vec_fast_path_keeps_everything_on_the_device_of_its_tables():
    """The word2vec batched path on meta tables: every tensor it makes follows W_in's device."""
    from neuraltext.fast.word2vec import _cbow_step, _sgns_step, sample_alias

    V, D, B, k = 30, 4, 8, 2
    W_in, W_out = torch.empty(V, D, device="meta"), torch.empty(V, D, device="meta")
    idx = torch.zeros(B, dtype=torch.long, device="meta")
    neg = sample_alias(torch.empty(V, device="meta"), torch.zeros(V, dtype=torch.long, device="meta"), B * k)
    assert neg.device.type == "meta"
    assert _sgns_step(W_in, W_out, idx, idx, neg, 0.1).device.type == "meta"
    examples = (idx, idx, idx, [0, 1, 2, 3, 4, 5, 6, 7, 8])
    assert _cbow_step(W_in, W_out, examples, 0, B, neg, 0.1).device.type == "meta"


def test_padding_mask_with_the_padded_length_reads_nothing_back():
    """padding_mask(lengths, T) with T given (the batch's padded length) builds the mask on the lengths'
    device without reading them back; only a left-out T needs max(lengths) on the host."""
    from neuraltext.transformer.multihead import padding_mask

    lengths = torch.tensor([5, 3]).to("meta")
    mask = padding_mask(lengths, 6)
    assert mask.device.type == "meta" and mask.shape == (2, 6)
    with pytest.raises(RuntimeError):  # the host read the docstring warns about
        padding_mask(lengths)
