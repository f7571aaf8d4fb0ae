"""Data larger than memory: conversion throughput, flat peak RSS, store vs memory speed.

Setting: sequences with the shared length distribution (log-normal, median 100, clipped to
[5, 1000]), ``F = 8`` float32 features, per-sequence class labels; a one-layer LSTM classifier
(hidden 64, float32, CPU, 1 thread), batches of 64 bucketed by length (``technique="bucket"``).
Four measurements, each printed as a table:

1. **Conversion**: ``varlen.data.io.convert`` of a long Parquet table and a long CSV table
   (one row per step: id, step, 8 features, label) into a store; MB of steps per second and
   rows per second, and the converting process's peak RSS (it must not grow with the table).
2. **Peak RSS of training at three store sizes** (steps' bytes): in a fresh process, one full
   pass of a ``DataLoader`` over every sequence of the store, then 40 training steps of ``fit``
   on batches drawn from the whole store; the process's peak RSS (``VmHWM``) and its growth over
   the process after imports and one warm-up batch. Flat means the data path holds batches,
   not data. Allocations from 64 KiB are mapped (glibc ``MALLOC_MMAP_THRESHOLD_``), so freed
   batches leave RSS and it shows live memory.
3. **Training throughput, store vs memory** on the same data (the smallest store, which fits in
   memory): ``fit`` for the same steps from a ``Ragged`` in memory and from the store (read a
   batch at a time); real steps per second of each (the time of each step includes fetching its
   batch), medians over interleaved rounds, and the ratio store / memory (goal >= 0.9).
4. **Data loading vs model time per batch**: for the same batches, the median time to fetch
   and pad a batch (from memory, from the store) and the model's forward + backward + step.
5. **End to end on the command line** (``--end-to-end MB``, alone): a long CSV table of ``MB``
   MB of float32 steps (a multi-GB file from 1000 MB) goes through ``varlen convert``,
   ``varlen train STORE`` (``--steps N``, a 16-unit LSTM without convolutions) and
   ``varlen predict MODEL STORE`` as a user runs them; each command's wall time and peak RSS
   (``wait4``'s ``ru_maxrss``) beside the sizes of the table and the store.

Run: ``python benchmarks/bench_store.py [--quick] [--sizes 256,1024,4096] [--dir DIR]``
(sizes in MB of steps; the stores go to a temporary folder unless ``--dir`` is given), or
``python benchmarks/bench_store.py --end-to-end 1000 [--dir DIR]``. ``--clean`` deletes the
generated tables and stores at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from varlen.data.io.store import StoreChunk

F = 8
BATCH = 64
HIDDEN = 64
MiB = 2**20
_BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, os.fspath(_BENCH_DIR))
from _setting import sample_lengths  # noqa: E402  # the shared length distribution


def _sequence_chunks(size_mb: float, seed: int) -> Iterator[StoreChunk]:
    """Store chunks of random sequences until ``size_mb`` MB of float32 steps."""
    from varlen.data.io.store import StoreChunk
    from varlen.data.ragged import Ragged

    rng = np.random.default_rng(seed)
    target = int(size_mb * 1e6) // (4 * F)  # steps
    done = first = 0
    while done < target:
        lengths = sample_lengths(2048, rng)
        lengths = lengths[: max(int(np.searchsorted(np.cumsum(lengths), target - done)) + 1, 1)]
        steps = int(lengths.sum())
        values = rng.standard_normal((steps, F), dtype=np.float32)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        labels = (values[offsets[:-1], 0] > 0).astype(np.int64)  # learnable from step 0
        ids = np.arange(first, first + len(lengths))
        yield StoreChunk(Ragged.view(values, offsets), ids, labels)
        done, first = done + steps, first + len(lengths)


def make_store(path: Path, size_mb: float) -> float:
    """Write a store of ``size_mb`` MB of steps; return its size in MB."""
    from varlen.data.io.store import write_store

    if not path.exists():
        write_store(path, _sequence_chunks(size_mb, seed=0), dtype=np.float32)
    return path.stat().st_size / 1e6


def make_tables(
    folder: Path, size_mb: float, kinds: tuple[str, ...] = ("parquet", "csv")
) -> dict[str, Path]:
    """Write the same long table as Parquet and/or CSV, block by block; return their paths."""
    import pyarrow as pa
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    paths = {kind: folder / f"long_{size_mb:g}.{kind}" for kind in kinds}
    if all(path.exists() for path in paths.values()):
        return paths
    names = ["id", "step", *[f"f{j}" for j in range(F)], "label"]
    parquet = csv = None
    try:
        for chunk in _sequence_chunks(size_mb, seed=1):
            x, labels = chunk.x, chunk.y
            if not isinstance(labels, np.ndarray):  # one label per sequence here
                raise TypeError("expected sequence labels")
            lengths = x.lengths
            columns = [
                np.repeat(chunk.ids, lengths),
                np.arange(x.num_steps) - np.repeat(x.offsets[:-1], lengths),
                *[x.values[:, j] for j in range(F)],
                np.repeat(np.array(["down", "up"])[labels], lengths),
            ]
            table = pa.table(dict(zip(names, columns, strict=True)))
            if "parquet" in paths:
                parquet = parquet or pq.ParquetWriter(paths["parquet"], table.schema)
                parquet.write_table(table)
            if "csv" in paths:
                csv = csv or pv.CSVWriter(paths["csv"], table.schema)
                csv.write_table(table)
    finally:
        for writer in (parquet, csv):
            if writer is not None:
                writer.close()
    return paths


# ------------------------------------------------------------------------- workers


def _rss_now() -> int:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def worker_convert(source: str, out: str) -> None:
    """Convert ``source``; print seconds, rows and peak RSS."""
    from varlen.data.io.convert import convert

    start = time.perf_counter()
    summary = convert(source, out, id="id", order="step", target="label")
    print(time.perf_counter() - start, summary.num_steps, _peak_rss())


def worker_train(store_path: str, steps: int) -> None:
    """A full DataLoader pass and ``steps`` training steps; print peaks of RSS."""
    import torch

    from varlen.batching import BucketBatchSampler, Collate, RaggedDataset
    from varlen.data.io.store import open_store
    from varlen.training.loop import TrainConfig, fit
    from varlen.training.models import SequenceClassifier

    torch.set_num_threads(1)
    store = open_store(store_path)
    y = store.y
    assert y is not None  # noqa: S101  # the benchmark's stores have labels
    sampler = BucketBatchSampler(store.x.lengths, BATCH, seed=0)
    loader = torch.utils.data.DataLoader(
        RaggedDataset(store.x, y), batch_sampler=sampler, collate_fn=Collate(dtype=torch.float32)
    )
    model = SequenceClassifier(F, 2, hidden_size=HIDDEN)
    warm = TrainConfig(epochs=1, batch_size=BATCH, patience=None, max_steps=2)
    fit(model, store.x, y, config=warm, progress=False)  # torch's own first-use memory
    base = loader_peak = _rss_now()
    rows = 0
    for batch in loader:
        rows += len(batch.lengths)
        loader_peak = max(loader_peak, _rss_now())
    config = TrainConfig(epochs=1, batch_size=BATCH, patience=None, max_steps=steps)
    fit(model, store.x, y, config=config, progress=False)
    print(rows, base, loader_peak, _peak_rss(), store.x.nbytes)


def _run_worker(*args: str) -> list[float]:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, os.fspath(Path(__file__).resolve()), "--worker", *args]
    run = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{run.stderr}")
    return [float(value) for value in run.stdout.split()]


# ------------------------------------------------------------------------- tables


def conversion_table(folder: Path, size_mb: float) -> None:
    paths = make_tables(folder, size_mb)
    print(f"\n1. Conversion of a long table ({size_mb:g} MB of float32 steps, F = {F})")
    print(
        f"{'source':<9} {'file MB':>8} {'seconds':>8} {'MB steps/s':>11} {'rows/s':>11} "
        f"{'peak RSS MB':>12}"
    )
    for kind, path in paths.items():
        out = folder / f"converted_{kind}.arrow"
        seconds, rows, peak = _run_worker("convert", os.fspath(path), os.fspath(out))
        steps_mb = rows * F * 4 / 1e6
        print(
            f"{kind:<9} {path.stat().st_size / 1e6:>8.0f} {seconds:>8.1f} "
            f"{steps_mb / seconds:>11.1f} {rows / seconds:>11,.0f} {peak / MiB:>12.0f}"
        )
        out.unlink()


def rss_table(stores: dict[float, Path], steps: int) -> None:
    print(f"\n2. Peak RSS from a store: a full loader pass, then {steps} training steps")
    print(
        f"{'store MB':>9} {'sequences':>10} {'loader pass +MB':>16} {'peak RSS MB':>12} "
        f"{'training +MB':>13}"
    )
    for size, path in stores.items():
        rows, base, loader_peak, peak, _ = _run_worker("train", os.fspath(path), str(steps))
        print(
            f"{size:>9.0f} {rows:>10,.0f} {(loader_peak - base) / MiB:>16.1f} "
            f"{peak / MiB:>12.0f} {(peak - base) / MiB:>13.1f}"
        )


def _fit_speed(model_seed: int, data: object, y: np.ndarray, steps: int) -> float:
    import torch

    from varlen.training.loop import TrainConfig, fit
    from varlen.training.models import SequenceClassifier

    torch.manual_seed(model_seed)
    model = SequenceClassifier(F, 2, hidden_size=HIDDEN)
    config = TrainConfig(epochs=1, batch_size=BATCH, patience=None, max_steps=steps)
    result = fit(model, data, y, config=config, progress=False)  # type: ignore[arg-type]
    work = result.history[-1]
    return work.real_steps / work.train_seconds


def speed_tables(path: Path, steps: int, rounds: int) -> None:
    import torch

    from varlen.batching import BucketBatchSampler, Collate, RaggedDataset
    from varlen.data.io.store import open_store
    from varlen.training.models import SequenceClassifier

    torch.set_num_threads(1)
    store = open_store(path)
    y = store.y
    assert y is not None  # noqa: S101  # the benchmark's stores have labels
    in_memory = store.x.to_ragged()
    sources = {"memory": in_memory, "store": store.x}
    speeds: dict[str, list[float]] = {name: [] for name in sources}
    _fit_speed(0, in_memory, y, 2)  # warm-up
    for r in range(rounds):
        for name in sorted(sources, reverse=r % 2 == 1):
            speeds[name].append(_fit_speed(r, sources[name], y, steps))
    mem, disk = statistics.median(speeds["memory"]), statistics.median(speeds["store"])
    print(
        f"\n3. Training throughput on the same data ({store.x.nbytes / 1e6:.0f} MB, {steps} steps)"
    )
    print(f"{'source':<8} {'real steps/s':>13}")
    print(f"{'memory':<8} {mem:>13,.0f}\n{'store':<8} {disk:>13,.0f}")
    print(f"ratio store / memory: {disk / mem:.3f} (median of {rounds} interleaved rounds)")

    sampler = BucketBatchSampler(store.x.lengths, BATCH, seed=0)
    batches = [np.asarray(b) for _, b in zip(range(steps), sampler, strict=False)]
    collate = Collate(dtype=torch.float32)
    model = SequenceClassifier(F, 2, hidden_size=HIDDEN)
    optimizer = torch.optim.Adam(model.parameters())
    times: dict[str, list[float]] = {"memory": [], "store": [], "model": []}
    datasets = {"memory": RaggedDataset(in_memory, y), "store": RaggedDataset(store.x, y)}
    for rows in batches:
        for name in ("memory", "store"):
            start = time.perf_counter()
            batch = collate(datasets[name].__getitems__(rows.tolist()))
            times[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        optimizer.zero_grad()
        scores = model(batch.x, batch.lengths)
        assert batch.targets is not None  # noqa: S101  # the dataset has targets
        torch.nn.functional.cross_entropy(scores, batch.targets).backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        times["model"].append(time.perf_counter() - start)
    print(f"\n4. Time per batch of {BATCH} (median over {len(batches)} batches)")
    print(f"{'part':<26} {'ms':>8}")
    print(f"{'load + pad, from memory':<26} {1e3 * statistics.median(times['memory']):>8.2f}")
    print(f"{'load + pad, from store':<26} {1e3 * statistics.median(times['store']):>8.2f}")
    print(f"{'model fwd + bwd + step':<26} {1e3 * statistics.median(times['model']):>8.2f}")


def _run_command(args: list[str]) -> tuple[float, int]:
    """Run ``varlen ARGS`` as a user would; return its wall seconds and peak RSS in bytes."""
    command = [sys.executable, "-m", "varlen.cli", *args]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"varlen {' '.join(args)} failed:\n{stderr}")
    return seconds, usage.ru_maxrss * 1024


def end_to_end(folder: Path, size_mb: float, steps: int) -> None:
    """Convert a long CSV table, train on its store, predict it; time and peak RSS of each."""
    table = make_tables(folder, size_mb, ("csv",))["csv"]
    store, model, predictions = folder / "e2e.arrow", folder / "e2e_model", folder / "e2e.csv"
    commands: dict[str, list[str | Path]] = {
        "convert": ["convert", table, "--out", store, "--id", "id", "--order", "step",
                    "--target", "label"],
        "train": ["train", store, "--out", model, "--steps", str(steps), "--technique",
                  "bucket", "--hidden-size", "16", "--conv-layers", "0", "--batch-size", "64",
                  "--threads", "1",
                  "--quiet"],
        "predict": ["predict", model, store, "--out", predictions, "--quiet"],
    }  # fmt: skip
    print(f"\n5. End to end: {size_mb:g} MB of float32 steps (F = {F}) in a long CSV table")
    print(f"{'command':<8} {'seconds':>8} {'peak RSS MB':>12} {'input MB':>9}")
    for name, args in commands.items():
        source = Path(args[1]) if name != "predict" else store
        seconds, peak = _run_command([os.fspath(arg) for arg in args])
        print(f"{name:<8} {seconds:>8.0f} {peak / MiB:>12.0f} {source.stat().st_size / 1e6:>9,.0f}")
    rows = sum(1 for _ in predictions.open()) - 1
    print(
        f"table {table.stat().st_size / 1e6:,.0f} MB, store {store.stat().st_size / 1e6:,.0f} MB, "
        f"{rows:,} predictions"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few steps")
    parser.add_argument(
        "--sizes", default=None, help="store sizes in MB of steps, e.g. 256,1024,4096"
    )
    parser.add_argument("--table-mb", type=float, default=None, help="long table size, MB of steps")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the files (kept)")
    parser.add_argument(
        "--end-to-end", type=float, default=None, metavar="MB", help="only the CLI run (5.)"
    )
    parser.add_argument("--clean", action="store_true", help="delete the generated files")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        worker_convert(*rest) if kind == "convert" else worker_train(rest[0], int(rest[1]))
        return
    folder = args.dir or Path(tempfile.mkdtemp(prefix="varlen-bench-store-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _measure(args, folder)
    finally:
        if args.clean:
            shutil.rmtree(folder)


def _measure(args: argparse.Namespace, folder: Path) -> None:
    print(f"files in {folder}; {os.cpu_count()} CPUs; torch 1 thread")
    if args.end_to_end is not None:
        end_to_end(folder, args.end_to_end, steps=10 if args.quick else 40)
        return
    sizes = [
        float(s)
        for s in (args.sizes or ("16,64,256" if args.quick else "256,1024,4096")).split(",")
    ]
    table_mb = args.table_mb or (8.0 if args.quick else 128.0)
    steps, rounds = (10, 3) if args.quick else (40, 5)
    conversion_table(folder, table_mb)
    stores = {size: folder / f"store_{size:g}.arrow" for size in sizes}
    for size, path in stores.items():
        start = time.perf_counter()
        written = make_store(path, size)
        print(f"store {size:g} MB: {written:.0f} MB on disk ({time.perf_counter() - start:.0f} s)")
    rss_table(stores, steps)
    speed_tables(stores[sizes[0]], steps, rounds)


if __name__ == "__main__":
    main()
