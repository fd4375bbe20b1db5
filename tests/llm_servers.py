"""Start and stop the OpenAI-compatible servers that the served-backend tests and benchmark talk to.

One launcher, :func:`start_server`, for the three servers the project runs on loopback (127.0.0.1, a
free port, nothing downloaded): ``transformers serve`` (``tests/test_clinical_served_real.py``),
llama-cpp-python's ``python -m llama_cpp.server`` and llama.cpp's own ``llama-server`` binary
(``tests/test_clinical_llamacpp.py``, ``benchmarks/clinical_served.py``). It starts the command with
its output in a log file, polls a URL until it answers HTTP 200 (the model is loaded), and raises
:class:`ServerNotReady` with the log's tail if the process exits or ``timeout`` passes first.

``llama-server`` is opt-in: ``make llama-server`` builds it into ``.build/llama-server/bin/`` from the
llama.cpp sources vendored in the pinned llama-cpp-python sdist (``tools/build_llama_server.sh``);
``NEURALTEXT_LLAMA_SERVER`` names another binary. Not a test module (no ``test_`` prefix): pytest
puts ``tests/`` on ``sys.path``, and the benchmark adds it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

START_TIMEOUT = 120  # seconds for a server to load its model and answer its readiness URL
ROOT = Path(__file__).resolve().parent.parent
LLAMA_SERVER = ROOT / ".build" / "llama-server" / "bin" / "llama-server"  # where `make llama-server` puts it


class ServerNotReady(RuntimeError):
    """The server exited, or did not answer its readiness URL in time (the message ends with its log)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_gguf() -> Path:
    """The packaged SmolLM2-135M-Instruct GGUF file (skips the calling test when its package is absent)."""
    import pytest

    from neuraltext.weights import ModelNotAvailableError, resolve

    try:
        resolved = resolve("smollm2-135m-instruct")
    except ModelNotAvailableError as err:
        pytest.skip(str(err))
    return Path(resolved.path) / resolved.gguf_file


def llama_server_binary() -> tuple[Path | None, str]:
    """``(path, "")`` of an executable ``llama-server``, or ``(None, why not)``.

    ``$NEURALTEXT_LLAMA_SERVER`` if set, else ``.build/llama-server/bin/llama-server``."""
    named = os.environ.get("NEURALTEXT_LLAMA_SERVER")
    path = Path(named) if named else LLAMA_SERVER
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = f"NEURALTEXT_LLAMA_SERVER={named!r}" if named else str(path.relative_to(ROOT))
        return None, f"no llama-server binary at {where} (`make llama-server` builds it: 16 min on 2 cores)"
    return path, ""


def busy_slots(base_url: str) -> int:
    """How many of ``llama-server``'s slots are decoding a request now (its ``/slots`` monitoring endpoint)."""
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/slots", timeout=10) as reply:
        return sum(bool(slot["is_processing"]) for slot in json.load(reply))


def start_server(name: str, command: list[str], ready_url: str, log_path: Path, env: dict | None = None,
                 timeout: float = START_TIMEOUT) -> subprocess.Popen:
    """The running process of ``command`` once ``ready_url`` answers HTTP 200, or :class:`ServerNotReady`."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ServerNotReady(f"{name} exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(ready_url, timeout=2) as reply:
                if reply.status == 200:
                    return proc
        except OSError:  # refused while starting; llama-server answers 503 while it loads the model
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise ServerNotReady(f"{name} not ready in {timeout} s:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.3)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_llama_cpp_server(model: Path, log_path: Path, n_ctx: int = 8192, threads: int = 1):
    """``(process, base_url)`` of ``python -m llama_cpp.server`` serving ``model`` as ``smollm2``.

    One thread by default: on a shared 2-core machine ggml's threads wait for each other at every
    operation: two threads took 4 s a token where one took about 0.2 s (load 16). Its requests run
    one at a time (a lock around the one model)."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "smollm2",
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
               "--n_threads_batch", str(threads)]
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return start_server("llama_cpp.server", command, base + "/v1/models", log_path, env=env), base + "/v1"


def start_llama_server(binary: Path, model: Path, log_path: Path, slots: int = 8, ctx_per_slot: int = 4096,
                       threads: int = 2):
    """``(process, base_url)`` of llama.cpp's ``llama-server`` serving ``model`` as ``smollm2``.

    ``slots`` sequences decode together (``--parallel``, continuous batching: a request joins the
    running batch at the next step); each slot has ``ctx_per_slot`` tokens of context (``-c`` is the
    total, split between the slots). ``response_format`` (``json_schema`` or ``json_object`` with a
    schema) becomes a grammar that masks the logits. No web UI, nothing downloaded."""
    port = free_port()
    command = [str(binary), "-m", str(model), "-a", "smollm2", "--host", "127.0.0.1", "--port", str(port),
               "-t", str(threads), "-tb", str(threads), "--parallel", str(slots), "-c", str(slots * ctx_per_slot),
               "--cont-batching", "--no-webui"]
    base = f"http://127.0.0.1:{port}"
    return start_server("llama-server", command, base + "/health", log_path), base + "/v1"


def start_transformers_serve(model_dir: str, log_path: Path):
    """``(process, base_url)`` of ``transformers serve`` on the CPU, offline, the model preloaded."""
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    command = [sys.executable, "-c", "from transformers.cli.transformers import main; main()", "serve",
               "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--log-level", "info", model_dir]
    base = f"http://127.0.0.1:{port}"
    return start_server("transformers serve", command, base + "/health", log_path, env=env), base + "/v1"
