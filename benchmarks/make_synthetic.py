"""Write synthetic single-channel, variable-length classification sets as UEA/UCR ``.ts`` files.

They stand in for data varlen is judged on but never sees (long single-channel series from
disparate sources, few series per class), so the ``varlen train`` defaults are not tuned to the
three real sets alone. Two families, each a function of ``--seed``:

- ``gestures``: 10 classes, 5 training series per class, lengths 30-360. A class is a smooth
  template (a few Gaussian bumps); a series is the template under a random monotone time warp,
  a random gain and offset (its "source") and noise, with idle steps at either end.
- ``appliance``: 11 classes, 15-90 training series per class (imbalanced), lengths 100-1,300. A
  class is a periodic waveform (its harmonics' amplitudes and phases); a series has a random
  period, gain, switch-on transient and noise.

Usage::

    python benchmarks/make_synthetic.py OUT_DIR [--seed 0]

writes ``OUT_DIR/SynthGestures_{TRAIN,TEST}.ts`` and ``OUT_DIR/SynthAppliance_{TRAIN,TEST}.ts``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np


def _write_ts(path: Path, name: str, series: list[np.ndarray], labels: list[int]) -> None:
    classes = " ".join(str(c) for c in sorted(set(labels)))
    lines = [
        f"@problemName {name}",
        "@timeStamps false",
        "@missing false",
        "@univariate true",
        "@equalLength false",
        f"@classLabel true {classes}",
        "@data",
    ]
    for values, label in zip(series, labels, strict=True):
        lines.append(",".join(f"{v:.5g}" for v in values) + f":{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _gesture(template: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    length = int(rng.integers(30, 361))
    knots = np.sort(rng.uniform(0, 1, 3))
    warp = np.interp(
        np.linspace(0, 1, length), [0, *knots, 1], [0, *np.sort(rng.uniform(0, 1, 3)), 1]
    )
    warp = 0.7 * np.linspace(0, 1, length) + 0.3 * warp  # a mild, monotone time warp
    grid = np.linspace(0, 1, len(template))
    values = np.interp(warp, grid, template)
    idle = int(rng.integers(0, length // 5 + 1))
    values = np.concatenate([np.zeros(idle), values])[:length] if rng.random() < 0.5 else values
    gain, offset = np.exp(rng.normal(0, 0.5)), rng.normal(0, 1.0)
    series: np.ndarray = gain * values + offset + rng.normal(0, 0.15, length)
    return series


def gestures(
    rng: np.random.Generator, *, train_per_class: int = 5, test_per_class: int = 30
) -> tuple[Any, ...]:
    """Series and labels of the gesture-like set (train, test)."""
    grid = np.linspace(0, 1, 200)
    templates = []
    for _ in range(10):
        centers, widths = rng.uniform(0.1, 0.9, 4), rng.uniform(0.03, 0.15, 4)
        amps = rng.normal(0, 1.5, 4)
        templates.append(
            sum(
                a * np.exp(-0.5 * ((grid - c) / w) ** 2)
                for a, c, w in zip(amps, centers, widths, strict=True)
            )
        )
    split = []
    for per_class in (train_per_class, test_per_class):
        labels = [c for c in range(10) for _ in range(per_class)]
        split.append(([_gesture(templates[c], rng) for c in labels], labels))
    return tuple(split)


def _appliance(harmonics: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    length = int(rng.integers(100, 1301))
    period = rng.uniform(15, 25)
    t = np.arange(length)
    phase = rng.uniform(0, 2 * np.pi)
    wave = sum(
        amp * np.sin(2 * np.pi * (k + 1) * t / period + k * phase + shift)
        for k, (amp, shift) in enumerate(harmonics)
    )
    onset = np.minimum(1.0, (t + 1) / rng.uniform(5, 200))  # switch-on transient
    gain = np.exp(rng.normal(0, 0.7))
    series: np.ndarray = gain * onset * wave + rng.normal(0, 0.1 * gain, length)
    return series


def appliance(rng: np.random.Generator) -> tuple[Any, ...]:
    """Series and labels of the appliance-like set (train, test)."""
    classes = []
    for _ in range(11):
        amps = np.abs(rng.normal(0, 1, 5)) * np.array([1.0, 0.6, 0.5, 0.4, 0.3])
        classes.append(np.stack([amps, rng.uniform(0, 2 * np.pi, 5)], axis=1))
    counts = rng.integers(15, 91, 11)
    split = []
    for scale in (1.0, 1.0):
        labels = [c for c in range(11) for _ in range(int(counts[c] * scale))]
        split.append(([_appliance(classes[c], rng) for c in labels], labels))
    return tuple(split)


def main() -> None:
    """Write both sets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, make in (("SynthGestures", gestures), ("SynthAppliance", appliance)):
        rng = np.random.default_rng(args.seed)
        (train, test) = make(rng)
        _write_ts(args.out / f"{name}_TRAIN.ts", name, *train)
        _write_ts(args.out / f"{name}_TEST.ts", name, *test)
        print(f"{name}: {len(train[0])} train / {len(test[0])} test series")


if __name__ == "__main__":
    main()
