"""Flushing denormals to zero: padded LSTM training steps with ``torch.set_flush_denormal`` off/on.

``varlen train`` turns flushing on for its own process (the library never does). This measures
what it buys: a bidirectional ``varlen.nn.LSTM`` (F 13, H 64) on post-padded batches of 32
(lengths 20-400), forward + backward + Adam, one thread, timed in process CPU time, the two
settings interleaved round by round; first with fresh weights, then after ``--train`` steps (as
a model trains, gates saturate and their gradients can underflow into denormals).
Run: ``python benchmarks/bench_denormal.py [--quick] [--train 200] [--rounds 6]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from varlen.nn import LSTM


def main() -> None:
    """Print the median CPU seconds of 3 steps with flushing off and on, and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=200, help="steps before the second row")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="20 steps before, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.train, args.rounds = 20, 2
    torch.set_num_threads(1)
    torch.manual_seed(0)
    B, T, F, H = 32, 400, 13, 64
    x = torch.randn(B, T, F)
    lengths = torch.randint(20, T + 1, (B,))
    lengths[0] = T
    y = torch.randint(0, 10, (B,))
    rnn, head = LSTM(F, H, bidirectional=True), torch.nn.Linear(2 * H, 10)
    optimizer = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=3e-3)

    def step() -> None:
        optimizer.zero_grad()
        out, _ = rnn(x, lengths)
        loss = torch.nn.functional.cross_entropy(head(out.sum(dim=1)), y)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()

    def measure() -> tuple[float, float]:
        times: dict[bool, list[float]] = {False: [], True: []}
        for round_ in range(args.rounds + 1):
            for flag in (False, True):
                torch.set_flush_denormal(flag)
                start = time.process_time()
                for _ in range(3):
                    step()
                if round_:  # the first round warms up
                    times[flag].append(time.process_time() - start)
        return statistics.median(times[False]), statistics.median(times[True])

    print("1 thread, CPU time (the machine may be shared); 3 training steps per sample")
    print(f"{'weights':24} {'flush off':>10} {'flush on':>10} {'off / on':>9}")
    off, on = measure()
    print(f"{'fresh':24} {off:10.3f} {on:10.3f} {off / on:9.2f}")
    torch.set_flush_denormal(False)
    for _ in range(args.train):
        step()
    off, on = measure()
    print(f"{f'after {args.train} steps':24} {off:10.3f} {on:10.3f} {off / on:9.2f}")
    torch.set_flush_denormal(False)


if __name__ == "__main__":
    main()
