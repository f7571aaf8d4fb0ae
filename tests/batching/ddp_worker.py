"""One rank of the distributed training test: run as ``python -m tests.batching.ddp_worker``.

Trains ``varlen.nn.LSTM`` + a linear head under ``DistributedDataParallel`` (gloo, CPU) on
variable-length random data batched by ``BucketBatchSampler`` (``num_replicas`` and
``rank`` taken from the process group), and writes what the test checks to a JSON file:
the dataset indices every rank used per epoch, the batch counts, and every rank's
parameters after training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from varlen.batching import Batch, BucketBatchSampler, Collate, RaggedDataset
from varlen.data.ragged import Ragged
from varlen.nn import LSTM

NUM_SEQUENCES = 101  # odd, so the batch count needs equalizing across 2 ranks
EPOCHS = 2


class Regressor(nn.Module):
    """LSTM over the real steps, then a linear head on the last layer's final state."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = LSTM(3, 8)
        self.head = nn.Linear(8, 1)

    def forward(self, batch: Batch) -> Tensor:
        """Return ``(B,)`` predictions."""
        _, state = self.lstm(batch)
        prediction: Tensor = self.head(state.h[-1]).squeeze(-1)  # (B,)
        return prediction


def make_dataset() -> RaggedDataset:
    """Return the same variable-length dataset on every rank (lengths 0..29, F = 3)."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 30, size=NUM_SEQUENCES)
    sequences = [rng.normal(size=(T, 3)).astype(np.float32) for T in lengths]
    targets = rng.normal(size=NUM_SEQUENCES).astype(np.float32)
    return RaggedDataset(Ragged.from_sequences(sequences), targets=targets)


def gather(value: object) -> list[object]:
    """Return ``value`` from every rank, in rank order."""
    out: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def train(max_tokens: int, *, two_lengths: bool) -> dict[str, object]:
    """Train for ``EPOCHS`` epochs; return what every rank saw and its final parameters.

    With ``two_lengths``, the budget bounds two lengths per sequence (the input's and a
    made-up target's, ``(n, 2)``), ``max_tokens`` for both.
    """
    dataset = make_dataset()
    lengths = dataset.lengths
    if two_lengths:
        targets = np.random.default_rng(1).integers(0, 40, size=lengths.shape[0])
        lengths = np.stack([lengths, targets], axis=1)  # (n, 2)
    sampler = BucketBatchSampler(lengths, max_tokens=max_tokens, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=Collate(padding="pre"))
    torch.manual_seed(dist.get_rank())  # different inits: DDP must broadcast rank 0's
    model = DistributedDataParallel(Regressor())
    initial = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    epochs = []
    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        indices: list[int] = []
        yielded = 0
        for batch in loader:
            yielded += 1
            assert batch.targets is not None
            loss = nn.functional.mse_loss(model(batch), batch.targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            indices += batch.indices.tolist()
        epochs.append(
            {"indices": gather(indices), "batches": gather(len(loader)), "yielded": gather(yielded)}
        )
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    moved = max(
        float((p.detach() - q).abs().max())
        for p, q in zip(model.parameters(), initial, strict=True)
    )
    return {
        "world": [sampler.num_replicas, sampler.rank],
        "epochs": epochs,
        "parameters": gather(flat.tolist()),
        "moved": moved,
    }


def main() -> None:
    """Join the process group, train, write the result file (rank 0), leave the group."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--world-size", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-tokens", type=int, default=120)
    parser.add_argument("--two-lengths", action="store_true", help="(n, 2) lengths budget")
    parser.add_argument("--hang-rank", type=int, default=-1, help="this rank sleeps forever")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{args.port}",
        rank=args.rank,
        world_size=args.world_size,
        timeout=timedelta(seconds=60),
    )
    if args.rank == args.hang_rank:
        time.sleep(3600)  # the harness must kill us
    result = train(args.max_tokens, two_lengths=args.two_lengths)
    (args.out / f"rank{args.rank}.json").write_text(json.dumps(result), encoding="utf-8")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    # With torch 2.13, gloo's C++ threads sometimes abort the process during interpreter
    # teardown ("terminate called without an active exception", SIGABRT), about one run in
    # 20, even after destroy_process_group. Everything is done and written: leave without
    # teardown so the exit code reports the run, not the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
