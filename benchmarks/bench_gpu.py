"""On one CUDA GPU: varlen's padded and packed methods against torch's usual paths.

Decides the default method on CUDA by measurement (``method="auto"`` packs on CUDA today; that
choice is NOT measured yet: no GPU was at hand when it was written). Setting: LSTM, input 32,
hidden 128, batches of 64 drawn from lengths log-normal (median 100) clipped to [5, 1000] (the
setting of ``bench_recurrent.py``). Rows, interleaved round by round on the same batches after a
warm-up round, training (forward + backward + Adam on a linear head over the final ``h``) and
inference (``torch.inference_mode``):

- ``torch padded, no mask``: ``torch.nn.LSTM`` on the padded batch (fast; wrong final states).
- ``varlen padded``: ``varlen.nn.LSTM(method="padded")``: cuDNN on the padded batch, pads made
  exact no-ops by the control column (exact).
- ``varlen packed``: ``varlen.nn.LSTM(method="packed")``: packed internally (exact).
- ``torch packed``: hand-written ``pack_padded_sequence`` + ``torch.nn.LSTM`` (exact).

Each row prints real steps per second (median over rounds, CUDA-synchronized timing) and its
ratio to ``varlen padded``. Run: ``python benchmarks/bench_gpu.py [--rounds N]``; part of
``scripts/gpu-check``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from _setting import sample_lengths  # benchmarks/ is on sys.path when run as a script
from varlen.nn import LSTM

INPUT, HIDDEN, BATCH, CLASSES = 32, 128, 64, 8

Step = Callable[[nn.Module, Tensor, Tensor], Tensor]


def _final(state: Tensor | tuple[Tensor, ...]) -> Tensor:
    h = state[0] if isinstance(state, tuple) else state
    return h[-1]


def torch_padded(rnn: nn.Module, x: Tensor, lengths: Tensor) -> Tensor:
    return _final(rnn(x)[1])


def varlen_padded(rnn: nn.Module, x: Tensor, lengths: Tensor) -> Tensor:
    return _final(rnn(x, lengths, method="padded")[1])


def varlen_packed(rnn: nn.Module, x: Tensor, lengths: Tensor) -> Tensor:
    return _final(rnn(x, lengths, method="packed")[1])


def torch_packed(rnn: nn.Module, x: Tensor, lengths: Tensor) -> Tensor:
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, state = rnn(packed)
    nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    return _final(state)


ROWS: dict[str, Step] = {
    "torch padded, no mask": torch_padded,
    "varlen padded": varlen_padded,
    "varlen packed": varlen_packed,
    "torch packed": torch_packed,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=12, help="batches per round")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device; nothing measured.")
        return
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    device = torch.device("cuda")
    batches = []
    for _ in range(args.batches):
        lengths = torch.from_numpy(sample_lengths(BATCH, rng))
        x = torch.randn(BATCH, int(lengths.max()), INPUT, device=device)
        batches.append((x, lengths, torch.randint(0, CLASSES, (BATCH,), device=device)))
    real = sum(int(lengths.sum()) for _, lengths, _ in batches)
    varlen_rnn = LSTM(INPUT, HIDDEN).to(device)
    torch_rnn = nn.LSTM(INPUT, HIDDEN, batch_first=True).to(device)
    torch_rnn.load_state_dict(varlen_rnn.state_dict())
    head = nn.Linear(HIDDEN, CLASSES).to(device)
    optimizer = torch.optim.Adam(
        [*varlen_rnn.parameters(), *torch_rnn.parameters(), *head.parameters()]
    )
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"{len(batches)} batches of {BATCH}, {real} real steps per round, {args.rounds} rounds")
    for mode in ("train", "infer"):
        times: dict[str, list[float]] = {name: [] for name in ROWS}
        for round_index in range(args.rounds + 1):  # round 0 warms up
            for name, step in ROWS.items():
                rnn = torch_rnn if name.startswith("torch") else varlen_rnn
                torch.cuda.synchronize()
                start = time.perf_counter()
                for x, lengths, y in batches:
                    if mode == "train":
                        loss = nn.functional.cross_entropy(head(step(rnn, x, lengths)), y)
                        optimizer.zero_grad()
                        loss.backward()  # type: ignore[no-untyped-call]
                        optimizer.step()
                    else:
                        with torch.inference_mode():
                            head(step(rnn, x, lengths))
                torch.cuda.synchronize()
                if round_index:
                    times[name].append(time.perf_counter() - start)
        base = statistics.median(times["varlen padded"])
        print(f"\n{mode}: real steps/s (median) and time relative to varlen padded")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  {name:<24} {real / median:>14,.0f}/s  x{median / base:6.2f}")


if __name__ == "__main__":
    main()
