"""neuraltext.training.loop on several processes (torchrun, gloo on the CPU), checkpoints that survive a
SIGKILL, and mixed precision (bf16 autocast on the CPU) on every chapter model that trains through
the shared loop.

The distributed runs are launched the way a user launches them,
``python -m torch.distributed.run --nproc_per_node=2 script.py``, in a subprocess with a timeout,
talking over the loopback interface only.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import runpy
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from neuraltext.training import load_checkpoint, train

SCRIPT = textwrap.dedent('''
    """Tiny float64 regression trained by neuraltext.training.loop; argv: out_dir local_batch [--hang-after N]."""
    import sys, time
    from pathlib import Path
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset
    from neuraltext.training import distributed
    from neuraltext.training.loop import train

    out, batch = Path(sys.argv[1]), int(sys.argv[2])
    hang_after = int(sys.argv[4]) if len(sys.argv) > 4 else None
    device = distributed.setup()                      # gloo on the CPU; a plain run without torchrun
    torch.manual_seed(0)                              # same data and initial weights on every rank
    X = torch.randn(64, 4, dtype=torch.float64)
    Y = torch.tanh(X @ torch.randn(4, 1, dtype=torch.float64))
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    loader = distributed.shard_loader(TensorDataset(X, Y), batch_size=batch, seed=1)
    calls = [0]

    if hang_after is not None:                        # let the test find and kill every worker
        (out / f"pid{distributed.rank()}").write_text(str(__import__("os").getpid()))

    def loss_fn(m, b):
        calls[0] += 1
        if hang_after is not None and calls[0] > hang_after:
            time.sleep(60)                            # wait here to be killed
        return nn.functional.mse_loss(m(b[0]), b[1])

    history = train(model, loss_fn, loader, epochs=3, optimizer=torch.optim.SGD(model.parameters(), lr=0.2),
                    device=device, checkpoint=out / "run.pt", checkpoint_every=3, resume=True, sync_every=4)
    if distributed.is_main():
        torch.save({"model": model.state_dict(), "loss": history.loss}, out / "final.pt")
    distributed.cleanup()
''')


def _launch(tmp_path: Path, out: Path, batch: int, nproc: int, *extra: str) -> subprocess.Popen:
    script = tmp_path / "ddp_script.py"
    script.write_text(SCRIPT)
    out.mkdir(parents=True, exist_ok=True)
    # CUDA hidden: this is the CPU/gloo test; on a 1-GPU machine rank 1 would otherwise ask for cuda:1
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NEURALTEXT_PROGRESS": "0", "MASTER_ADDR": "127.0.0.1",
           "GLOO_SOCKET_IFNAME": "lo", "CUDA_VISIBLE_DEVICES": ""}
    # --standalone: a rendezvous on localhost with a free port (no fixed port to collide on)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           str(script), str(out), str(batch), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group: killable as a whole


def _kill(proc: subprocess.Popen, out: Path) -> None:
    """SIGKILL the launcher and its workers (torchrun puts each worker in a session of its own)."""
    for pid_file in out.glob("pid*"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def _run_in_process(tmp: Path, out: Path, batch: int) -> None:
    """The same script as a plain single process (no torchrun): what a user runs on one machine."""
    script = tmp / "ddp_script.py"
    script.write_text(SCRIPT)
    out.mkdir(parents=True, exist_ok=True)
    argv = sys.argv
    sys.argv = [str(script), str(out), str(batch)]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv


def _finish(proc: subprocess.Popen, timeout: float = 150) -> None:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # (workers exit when the rendezvous store goes away)
        out, _ = proc.communicate()
        pytest.fail(f"torchrun timed out:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """2 processes x batch 8 and a 2-process run killed after its first checkpoint, launched together;
    then 1 process x batch 16 (the same global batch) in this process."""
    tmp = tmp_path_factory.mktemp("ddp")
    two = _launch(tmp, tmp / "two", 8, 2)
    killed = _launch(tmp, tmp / "killed", 8, 2, "--hang-after", "3")
    try:
        deadline = time.monotonic() + 150
        while not (tmp / "killed" / "run.pt").exists():
            assert time.monotonic() < deadline and killed.poll() is None, "no checkpoint appeared"
            time.sleep(0.2)
        time.sleep(0.5)  # both workers are now asleep in step 4's loss
    finally:
        _kill(killed, tmp / "killed")
    try:
        _finish(two)
    finally:
        if two.poll() is None:
            _kill(two, tmp / "two")
    _run_in_process(tmp, tmp / "one", 16)
    return tmp


def test_two_processes_reach_the_weights_of_one_with_the_global_batch(runs):
    """DDP averages the two ranks' gradients of their 8 examples: the gradient of the 16 examples one
    process sees (DistributedSampler: rank r takes positions r, r+2, ... of the same shuffle). After 12
    SGD steps in float64 the weights agree to 1e-12 (only the order of the additions differs)."""
    two, one = torch.load(runs / "two" / "final.pt"), torch.load(runs / "one" / "final.pt")
    assert len(two["loss"]) == len(one["loss"]) == 12  # 3 epochs x 64 / 16
    for name, value in one["model"].items():
        torch.testing.assert_close(two["model"][name], value, rtol=1e-12, atol=1e-12)
    assert two["loss"][-1] < 0.5 * two["loss"][0]  # and it did learn


def test_a_killed_run_leaves_a_usable_checkpoint_that_resumes_exactly(runs, tmp_path):
    """SIGKILL after the first checkpoint (step 3: mid-epoch, 3 of 4 batches): the file loads, holds
    both ranks' random states, no temporary file is left, and a 2-process resume ends with exactly
    the weights of the uninterrupted 2-process run."""
    ckpt = load_checkpoint(runs / "killed" / "run.pt")
    assert ckpt["position"] == {"step": 3, "epoch": 0, "batch": 3}
    assert len(ckpt["rng"]) == 2
    assert not list((runs / "killed").glob("*.tmp"))
    _finish(_launch(tmp_path, runs / "killed", 8, 2))
    resumed, reference = torch.load(runs / "killed" / "final.pt"), torch.load(runs / "two" / "final.pt")
    for name, value in reference["model"].items():
        assert torch.equal(resumed["model"][name], value), name
    assert resumed["loss"] == reference["loss"]


# ------------------------------------------------------------------- mixed precision on the CPU
def _rnn_lm():
    lm = importlib.import_module("neuraltext.rnn.lm")
    model = lm.RNNLM(lm.LMConfig(vocab_size=20, embed_dim=8, hidden_size=16))
    ids = torch.randint(0, 20, (4, 9))

    def loss(m, b):
        return lm.lm_loss(m(b[:, :-1])[0], b[:, 1:])
    return model, loss, [ids]


def _seq2seq_batch():
    src = torch.randint(4, 20, (4, 7))
    tgt = torch.randint(4, 20, (4, 6))
    tgt[:, 0] = 2
    return src, torch.full((4,), 7), tgt[:, :-1], tgt[:, 1:]


def _seq2seq():
    s2s, s2s_train = importlib.import_module("neuraltext.seq2seq.model"), importlib.import_module("neuraltext.seq2seq.training")
    return s2s.Seq2Seq(s2s.Seq2SeqConfig(20, 20, emb_dim=8, hidden_size=8)), s2s_train.seq2seq_loss, [_seq2seq_batch()]


def _transformer():
    tr = importlib.import_module("neuraltext.transformer.model")
    cfg = tr.TransformerConfig(d_model=16, n_heads=2, d_ff=32, src_vocab_size=20, tgt_vocab_size=20,
                               n_encoder_layers=1, n_decoder_layers=1, max_len=16)
    return tr.Transformer(cfg), tr.transformer_loss, [_seq2seq_batch()]


def _bert():
    bert, pre = importlib.import_module("neuraltext.bert.model"), importlib.import_module("neuraltext.bert.pretraining")
    model = bert.BertForPreTraining(bert.BertConfig(vocab_size=30, hidden_size=16, n_layers=1, n_heads=2,
                                                    intermediate_size=32, max_position=16))
    ids = torch.randint(5, 30, (4, 10))
    labels = torch.full_like(ids, bert.IGNORE_INDEX)
    labels[:, 3] = ids[:, 3]
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
             "mlm_labels": labels, "is_next": torch.tensor([0, 1, 0, 1]),
             "n_masked": int((labels != bert.IGNORE_INDEX).sum())}  # as pretraining_batches gives it
    return model, pre.pretraining_loss, [batch]


def _gpt():
    gpt = importlib.import_module("neuraltext.gpt.model")
    ids = torch.randint(0, 20, (4, 9))
    model = gpt.GPT(gpt.GPTConfig(vocab_size=20, max_len=16, d_model=16, n_heads=2, n_layers=1))
    return model, gpt.gpt_loss, [(ids[:, :-1], ids[:, 1:])]


@pytest.mark.parametrize("build", [_rnn_lm, _seq2seq, _transformer, _bert, _gpt],
                         ids=["rnn_lm", "seq2seq", "transformer", "bert", "gpt"])
def test_bf16_autocast_trains_every_chapter_model(build):
    """amp=True on the CPU: the linear layers compute in bfloat16 (seen by a hook), the float32
    weights take a finite step."""
    try:
        model, loss_fn, batches = build()
    except ModuleNotFoundError as err:  # a chapter whose module is not in this checkout yet
        pytest.skip(str(err))
    dtypes = []
    linear = next(m for m in model.modules() if isinstance(m, nn.Linear))
    linear.register_forward_hook(lambda mod, inp, out: dtypes.append(out.dtype))
    before = [p.detach().clone() for p in model.parameters()]
    history = train(model, loss_fn, batches, amp=True, device="cpu", lr=1e-2)
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert history.steps == 1 and torch.isfinite(torch.tensor(history.loss)).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_shard_loader_reshuffles_each_epoch_through_the_loop():
    """In one process shard_loader covers the whole dataset; train() calls set_epoch, so each epoch
    sees every example once, in a new order (without set_epoch both orders would be equal)."""
    from torch.utils.data import TensorDataset

    from neuraltext.training import shard_loader

    X = torch.arange(12, dtype=torch.float32).unsqueeze(1)
    seen = []

    def loss_fn(m, b):
        seen.append(b[0].squeeze(1).tolist())
        return nn.functional.mse_loss(m(b[0]), b[1])

    train(nn.Linear(1, 1), loss_fn, shard_loader(TensorDataset(X, X), batch_size=4, seed=0), epochs=2,
          device="cpu")
    first, second = sum(seen[:3], []), sum(seen[3:], [])
    assert sorted(first) == sorted(second) == list(range(12)) and first != second


def test_the_launch_hides_cuda_so_every_rank_runs_on_the_cpu(tmp_path, monkeypatch):
    """The gloo test's workers see no GPU (with one GPU, rank 1 would ask for cuda:1 and fail)."""
    seen = {}

    def fake_popen(cmd, env, **kwargs):
        seen.update(env)
        return None
    monkeypatch.setattr(subprocess, "Popen", fake_popen)
    _launch(tmp_path, tmp_path / "out", 8, 2)
    assert seen["CUDA_VISIBLE_DEVICES"] == ""


def test_setup_names_a_local_rank_without_a_gpu(monkeypatch):
    """torchrun --nproc_per_node=2 on a 1-GPU machine: rank 1 is told why, before asking for cuda:1."""
    from neuraltext.training import distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: pytest.fail(f"set_device({d}) was called"))
    for name, value in {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match=r"LOCAL_RANK=1 but this machine shows 1 GPU.*--nproc_per_node=1"):
        distributed.setup()


@pytest.mark.parametrize("cuda", [True, False])
def test_shard_loader_pins_memory_where_batches_go_to_a_gpu(cuda, monkeypatch):
    """non_blocking copies overlap only from pinned memory: pinned by default when CUDA is there."""
    from torch.utils.data import TensorDataset

    from neuraltext.training import shard_loader

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    data = TensorDataset(torch.zeros(4, 1))
    assert shard_loader(data, batch_size=2).pin_memory is cuda
    assert shard_loader(data, batch_size=2, pin_memory=False).pin_memory is False
