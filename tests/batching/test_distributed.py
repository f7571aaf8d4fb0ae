"""Distributed training for real: 2 gloo processes, DDP, the bucket sampler, a hard timeout."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch.distributed as dist

from tests.batching import ddp_worker

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")

ROOT = Path(__file__).resolve().parents[2]
WORLD_SIZE = 2


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_ranks(out: Path, *, timeout: float, extra: tuple[str, ...] = ()) -> list[int | None]:
    """Start one worker process per rank and wait at most ``timeout`` seconds for all.

    Returns each rank's exit code, or ``None`` for a rank that was still running at the
    deadline (it is then killed, as are all the others).
    """
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "GLOO_SOCKET_IFNAME": "lo",  # stay on the loopback interface
        "OMP_NUM_THREADS": "1",
    }
    port = str(free_port())
    command = [sys.executable, "-m", "tests.batching.ddp_worker", "--port", port, "--out", str(out)]
    processes = [
        subprocess.Popen(
            [*command, "--rank", str(rank), "--world-size", str(WORLD_SIZE), *extra],
            cwd=ROOT,
            env=env,
        )
        for rank in range(WORLD_SIZE)
    ]
    deadline = time.monotonic() + timeout
    codes: list[int | None] = []
    try:
        for process in processes:
            try:
                codes.append(process.wait(timeout=max(deadline - time.monotonic(), 0.01)))
            except subprocess.TimeoutExpired:
                codes.append(None)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return codes + [None] * (WORLD_SIZE - len(codes))


@pytest.mark.parametrize("extra", [(), ("--two-lengths",)], ids=["tokens", "two-lengths"])
def test_ddp_training_with_bucket_sampler(tmp_path, extra):
    """Two ranks train in lockstep: same parameters, every sample once per epoch, no hang.

    Token budgets, over one length or two per sequence, give both ranks the same number of
    batches (counted as yielded, and as len() predicts it).
    """
    codes = run_ranks(tmp_path, timeout=90, extra=extra)
    assert codes == [0] * WORLD_SIZE, f"ranks exited with {codes} (None = killed at timeout)"
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD_SIZE)]
    assert [result["world"] for result in results] == [[WORLD_SIZE, r] for r in range(WORLD_SIZE)]
    everything = list(range(ddp_worker.NUM_SEQUENCES))
    orders = []
    for epoch in results[0]["epochs"]:
        per_rank = epoch["indices"]
        assert sorted(i for indices in per_rank for i in indices) == everything
        assert len(set(epoch["batches"])) == 1  # equal batch counts: nobody waits at the end
        assert epoch["yielded"] == epoch["batches"]
        orders.append(per_rank)
    assert orders[0] != orders[1]  # set_epoch reshuffled
    parameters = results[0]["parameters"]
    assert all(p == parameters[0] for p in parameters[1:])  # bit-identical across ranks
    assert results[0]["moved"] > 0  # training changed them


def test_run_ranks_kills_a_hung_rank(tmp_path):
    """The harness bounds the run: a rank that never returns is killed and reported."""
    start = time.monotonic()
    codes = run_ranks(tmp_path, timeout=4, extra=("--hang-rank", "1"))
    assert codes[1] is None
    assert time.monotonic() - start < 15
    assert not list(tmp_path.iterdir())  # nobody finished training
