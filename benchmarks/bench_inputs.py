"""Ragged inputs on varlen.nn.LSTM: jagged and cu_seqlens against pad -> varlen -> unpad.

Setting (issue 14): B = 64 sequences, lengths of the shared setting (log-normal, median 100,
sigma 1, clipped to [5, 1000]; ``--quick``: B = 16), F = 32, LSTM hidden 128, float32, one
thread. The same data in every row, held as values ``(N, F)`` with offsets:

- ``pad -> varlen -> unpad``: the user-side pipeline: split the values into sequences,
  ``varlen.nn.functional.pad`` them, ``lstm(x, lengths)``, ``unpad`` and concatenate;
- ``values + offsets``: ``lstm(values, offsets=cu_seqlens)`` (int32 offsets);
- ``nested jagged``: ``lstm(njt)`` on a ``torch.nested`` jagged tensor;
- ``PackedSequence``: ``lstm(packed)``, varlen's drop-in for torch code;
- ``torch.nn.LSTM packed``: torch's own packed path on the same PackedSequence (what a torch
  user runs today; exact too, but per-step kernels on the CPU).

Each row is timed forward only (inference, ``no_grad``) and forward + backward (a sum of the
outputs and final states), after a warm-up; rows are interleaved round by round and the
table gives medians and the ratio to the first row. Outputs of every row are checked equal.

Run: ``python benchmarks/bench_inputs.py [--quick] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_sequence

from _setting import sample_lengths  # benchmarks/ is on sys.path when run as a script
from varlen.nn import LSTM
from varlen.nn.functional import pad, unpad

F, H, SEED = 32, 128, 0


def rows(
    lstm: LSTM, reference: nn.LSTM, values: Tensor, offsets: Tensor, sizes: list[int]
) -> dict[str, Callable[[Tensor], tuple[Tensor, Tensor]]]:
    """Each row: values -> (outputs as values (N, H), final h (1, B, H))."""

    def pipeline(v: Tensor) -> tuple[Tensor, Tensor]:
        x, lengths = pad(list(torch.split(v, sizes)))
        out, (h, _) = lstm(x, lengths)
        return torch.cat(unpad(out, lengths)), h

    def cu_seqlens(v: Tensor) -> tuple[Tensor, Tensor]:
        out, (h, _) = lstm(v, offsets=offsets)
        return out, h

    def jagged(v: Tensor) -> tuple[Tensor, Tensor]:
        out, (h, _) = lstm(torch.nested.nested_tensor_from_jagged(v, offsets.long()))
        return out.values(), h

    def packed(v: Tensor) -> tuple[Tensor, Tensor]:
        out, (h, _) = lstm(pack_sequence(list(torch.split(v, sizes)), enforce_sorted=False))
        return _unpack(out, sizes), h

    def torch_packed(v: Tensor) -> tuple[Tensor, Tensor]:
        out, (h, _) = reference(pack_sequence(list(torch.split(v, sizes)), enforce_sorted=False))
        return _unpack(out, sizes), h

    return {
        "pad -> varlen -> unpad": pipeline,
        "values + offsets": cu_seqlens,
        "nested jagged": jagged,
        "PackedSequence (varlen)": packed,
        "torch.nn.LSTM packed": torch_packed,
    }


def _unpack(out: PackedSequence, sizes: list[int]) -> Tensor:
    padded, lengths = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    return torch.cat(unpad(padded, lengths))


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="B = 16, 2 rounds")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    B = 16 if args.quick else 64
    rounds = args.rounds or (2 if args.quick else 7)
    sizes = sample_lengths(B, np.random.default_rng(SEED)).tolist()
    torch.manual_seed(SEED)
    lstm = LSTM(F, H)
    reference = nn.LSTM(F, H, batch_first=True)
    reference.load_state_dict(lstm.state_dict())
    values = torch.randn(sum(sizes), F)
    offsets = torch.tensor([0, *np.cumsum(sizes).tolist()], dtype=torch.int32)
    table = rows(lstm, reference, values, offsets, sizes)

    with torch.no_grad():
        outputs = {name: run(values) for name, run in table.items()}
    first = next(iter(outputs.values()))
    for name, (out, h) in outputs.items():
        if not (
            torch.allclose(out, first[0], atol=1e-5) and torch.allclose(h, first[1], atol=1e-5)
        ):
            raise RuntimeError(f"{name} disagrees with the first row")

    times: dict[tuple[str, str], list[float]] = {}
    for r in range(rounds + 1):  # round 0 warms up
        for name, run in table.items():
            start = time.perf_counter()
            with torch.no_grad():
                run(values)
            forward = time.perf_counter() - start
            leaf = values.clone().requires_grad_()
            start = time.perf_counter()
            out, h = run(leaf)
            torch.autograd.backward(out.sum() + h.sum())
            both = time.perf_counter() - start
            if r:
                times.setdefault((name, "fwd"), []).append(forward)
                times.setdefault((name, "fwd+bwd"), []).append(both)

    print(f"bench_inputs: B = {B}, N = {sum(sizes):,} steps (median length 100), F = {F},")
    print(f"H = {H}, float32, 1 thread, medians of {rounds} interleaved rounds; shared machine.\n")
    print("| input | forward ms | ratio | forward + backward ms | ratio |")
    print("|---|---|---|---|---|")
    base = {
        kind: statistics.median(times[(next(iter(table)), kind)]) for kind in ("fwd", "fwd+bwd")
    }
    for name in table:
        cells = []
        for kind in ("fwd", "fwd+bwd"):
            median = statistics.median(times[(name, kind)])
            cells.append(f"{median * 1e3:.1f} | {median / base[kind]:.2f}")
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
