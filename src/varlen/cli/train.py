"""``varlen train DATA``: train a classifier or regressor on your own variable-length data.

One path for every task (:mod:`varlen.cli._train_tasks`: one target per sequence, or one per
step), in modules that change apart: the options (:mod:`varlen.cli._train_options`), the plan
(:mod:`varlen.cli._train_plan`), the run record (:mod:`varlen.cli._run_record`) and this
command. Steps: read the data (``.ts``, or a long-format CSV/Parquet table with ``--id --order
--features --target``), check the targets fit the task (inferred: labels -> classification,
floating numbers -> regression), split a validation set (stratified by class; none, with a
warning, when it would be too small to select on), fit the standardizer on the training split's
real steps only, plan the run (``auto`` and the step budget from the data: the cost model's
estimate, or with ``--planner timed`` mask and bucket timed on the data; the reason is printed;
the step budget shrinks to fit ``--time-budget``), train with warm-up and cosine decay,
early stopping counted in steps and an atomic checkpoint at most every 10 s (``--resume``
continues an interrupted run exactly, with the options recorded in ``run.json``), report, and
save the model directory (see :mod:`varlen.training.artifacts`).

Under ``torchrun --nproc-per-node N -m varlen.cli train ...`` every process runs this command;
the process group is initialised from the environment (gloo on CPU), each rank trains on its
shard of every epoch's batches with gradients averaged, and only rank 0 writes files and prints.

One run owns ``--out`` at a time: rank 0 holds the folder's lock (:mod:`varlen._lock`) for the
whole run, and a second run on the same folder stops at once with exit code 2 and one line
naming the folder and the owner's pid. The lock dies with its process (``kill -9`` included),
so a killed run never blocks the next one or its ``--resume``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from varlen._atomic import remove_stale_temporaries
from varlen._lock import FolderBusyError, folder_lock
from varlen.cli._common import (
    CommandError,
    build_config,
    count,
    note_process_group_left,
    progress_enabled,
    say,
)
from varlen.cli._run_record import (
    CHECKPOINT_FILE,
    check_resume,
    data_digest,
    fingerprint,
    read_run_file,
    recorded_options,
    resume_command,
)
from varlen.cli._train_options import TrainOptions, add_arguments, given_options, plain
from varlen.cli._train_plan import (
    Plan,
    auto_candidates,
    choose_auto,
    plan_augment,
    plan_budget,
    plan_levels,
    plan_pooling,
    resolve,
    train_config,
)
from varlen.cli._train_tasks import Prepared, Score, Task, choose_task
from varlen.training.artifacts import save_model
from varlen.training.budget import estimate_step_seconds
from varlen.training.loop import FitResult
from varlen.training.models import SequenceModel
from varlen.training.techniques import TECHNIQUES

__all__ = ["TrainOptions", "add_arguments", "run"]


def warn(message: str) -> None:
    """Print ``varlen train: warning: message`` on stderr (shown even with ``--quiet``).

    Args:
        message: The warning.
    """
    print(f"varlen train: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``varlen train``.

    The command owns its process: it sets torch's CPU threads (``--threads``, default 1) and
    flushes denormal floats to zero (``torch.set_flush_denormal``, ``--no-flush-denormal`` to
    keep them): gradients through saturated gates can underflow into denormals, which slow CPU
    arithmetic. 1.75x faster padded LSTM training was reported for this machine;
    ``benchmarks/bench_denormal.py`` saw no gain on its setting (0.94-0.97x, within the noise of
    a shared machine). Flushing changes nothing above ``1e-38``.

    Args:
        args: The parsed arguments.

    Returns:
        The exit code, 0.
    """
    options = build_config(TrainOptions, args, command="train")
    if options.resume:
        options = recorded_options(options, args)
    threads = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    torch.set_flush_denormal(options.flush_denormal)
    try:
        with _own(options.out):
            finish = _init_distributed()
            try:
                code = _train(options, args)
                if finish is not None:  # no rank tears down before rank 0's files are written
                    dist.barrier(group=finish)
                return code
            finally:
                if finish is not None:
                    dist.destroy_process_group()
                    note_process_group_left()  # (the process then ends without teardown)
    finally:
        torch.set_num_threads(threads)  # as they were, for callers of main() in-process
        torch.set_flush_denormal(False)


@contextlib.contextmanager
def _own(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock (rank 0, which writes there): a second run on it is refused."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    try:
        with folder_lock(out, what="varlen train run"):
            remove_stale_temporaries(out)  # left by a run killed mid-write
            yield
    except FolderBusyError as error:
        raise CommandError(f"--out {error}") from None


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


# How long the other ranks wait at the end for rank 0 to score and save (see _init_distributed).
FINISH_TIMEOUT = datetime.timedelta(days=1)


def _init_distributed() -> dist.ProcessGroup | None:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE > 1``).

    Returns the group every rank waits in once its run is over (``None`` when not joined):
    the other ranks used to tear their process group down and exit while rank 0 was still
    scoring and writing the model, and a fault in that teardown (torch's gloo aborted a rank
    with ``terminate called without an active exception`` in 1 CI run of many) made the
    launcher stop rank 0 mid-write. The wait has a group of its own, on gloo, with a timeout
    of ``FINISH_TIMEOUT``: rank 0's scoring of a large test set may outlast the default
    group's 30 minutes, which stay the limit for a rank that hangs during training.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return None
    if dist.is_initialized():
        return None
    dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    finish: dist.ProcessGroup = dist.new_group(backend="gloo", timeout=FINISH_TIMEOUT)
    return finish


def _recorded_plan(options: TrainOptions) -> Plan | None:
    """The plan of the interrupted run, when resuming from its checkpoint."""
    if not (options.resume and (options.out / CHECKPOINT_FILE).is_file()):
        return None
    record = read_run_file(options.out)
    technique, steps = record.fingerprint.get("technique"), record.planned_steps
    if technique not in TECHNIQUES or steps < 1:
        return None
    why = (
        "chosen with --technique"
        if options.technique != "auto"
        else "auto, as chosen by the interrupted run"
    )
    return Plan(
        str(technique), why, steps, f"{steps} optimizer steps, as planned by the interrupted run"
    )


def plan_run(options: TrainOptions, prepared: Prepared, task: Task) -> Plan:
    """Choose the technique and the step budget of a run.

    ``auto`` picks as :func:`~varlen.cli._train_plan.choose_auto` says; the budget is
    ``--steps``, or fewer to fit ``--time-budget``. With ``--planner cost`` (the default) both
    come from the data alone: the candidates' speed is the cost model's estimate
    (:func:`varlen.training.budget.estimate_step_seconds`), so a run plans the same on any
    machine load. With ``--planner timed`` the candidates are timed on the data; under
    ``torchrun`` (several ranks) nothing is timed, so every rank plans the same.

    Args:
        options: The resolved options.
        prepared: The data.
        task: The task (times the techniques).

    Returns:
        The :class:`~varlen.cli._train_plan.Plan`.
    """
    recorded = _recorded_plan(options)
    if recorded is not None:
        return recorded
    n = len(prepared.train.x)
    several = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    auto = options.technique == "auto"
    candidates = auto_candidates(task.kind) if auto else (options.technique,)
    budgeted = options.epochs is None and options.time_budget is not None
    lengths = prepared.train.x.lengths
    estimates: dict[str, float] | None = None
    timings = None
    if options.planner == "cost":
        if n and (task.kind == "sequence" or budgeted):
            config = task.build_model(options, prepared).config
            estimates = {
                name: estimate_step_seconds(
                    config, lengths, batch_size=options.batch_size, technique=name
                )
                for name in candidates
            }
    elif not (several or n == 0) and (task.kind == "sequence" or budgeted):
        timings = task.time(options, prepared, candidates)
    if auto:
        name, reason = choose_auto(
            task.kind,
            timings=timings,
            lengths=lengths,
            batch_size=options.batch_size,
            estimates=estimates,
            steps=options.steps if options.epochs is None else None,
            time_budget=options.time_budget,
        )
    else:
        name, reason = options.technique, "chosen with --technique"
    estimate = None if estimates is None else estimates.get(name)
    steps, budget = plan_budget(
        options, train_size=n, technique=name, timings=timings, estimate=estimate
    )
    return Plan(name, reason, steps, budget)


def _fit(
    options: TrainOptions,
    task: Task,
    model: SequenceModel,
    prepared: Prepared,
    plan: Plan,
    *,
    augment: bool,
    resume: bool,
    progress: bool,
    log: Callable[[str], None] | None,
) -> FitResult:
    """Train the model, checkpointing to ``out/checkpoint.pt`` now and then."""
    config = train_config(options, plan.technique, plan.steps, task.defaults, augment=augment)
    checkpoint = options.out / CHECKPOINT_FILE
    try:
        return task.fit(
            model,
            prepared,
            config,
            checkpoint=checkpoint,
            resume=resume,
            progress=progress,
            log=log,
        )
    except KeyboardInterrupt:  # errors stay one line; an interrupted run says how to go on
        if checkpoint.is_file() and _rank() == 0:
            print(
                f"varlen train: the run stopped before it finished; a checkpoint is in "
                f"{os.fspath(checkpoint)}. Resume it with: {resume_command(options)}",
                file=sys.stderr,
            )
        raise


def _save(
    options: TrainOptions,
    task: Task,
    model: SequenceModel,
    prepared: Prepared,
    result: FitResult,
    plan: Plan,
) -> dict[str, Score]:
    """Score the validation and test splits, save the model directory; return the scores.

    Epochs are counted from 1 in ``config.json`` as in the printed summary.
    """
    splits = {"validation": prepared.validation, "test": prepared.test}
    scores = {
        name: task.score(model, split, prepared, plan.technique, options.batch_size)
        for name, split in splits.items()
        if split is not None
    }
    extra = {"task": "per-step"} if task.kind == "step" else {}
    save_model(
        options.out,
        model,
        features=prepared.features,
        labels=prepared.labels,
        normalizer=prepared.normalizer,
        target_normalizer=prepared.target_normalizer,
        technique=plan.technique,
        metadata={
            "options": plain(options),
            **extra,
            "technique_reason": plan.reason,
            "history": [{**asdict(stats), "epoch": stats.epoch + 1} for stats in result.history],
            "best_epoch": result.best_epoch + 1,
            "epochs_run": len(result.history),
            "optimizer_steps": result.steps,
            "real_steps_per_second": result.real_steps_per_second,
            "scores": {name: value._asdict() for name, value in scores.items()},
        },
    )
    return scores


def _report_lines(
    options: TrainOptions,
    task: Task,
    prepared: Prepared,
    result: FitResult,
    scores: dict[str, Score],
    plan: Plan,
    augment: str,
) -> list[str]:
    _, kind, metric = task.describe(options, prepared)
    unit = "" if prepared.task == "classification" else " (MSE of standardized targets)"
    val = 0 if prepared.validation is None else len(prepared.validation.x)
    steps = f" ({prepared.train.x.num_steps} train steps)" if task.kind == "step" else ""
    history = result.history
    stop = ""
    if result.stopped_early:
        stop = " (stopped early)"
    elif result.stopped_by_time:
        stop = f" (stopped by --time-limit {options.time_limit:g} s)"
    lines = [
        f"data: {options.data.name}: {len(prepared.train.x)} train / {val} validation "
        f"sequences{steps}, {count(len(prepared.features), 'feature')}, {kind}",
        f"technique: {plan.technique} ({plan.reason})",
        f"augment: {augment}",
        f"epochs: {len(history)} of {result.planned_epochs} run ({result.steps} optimizer steps), "
        f"best {result.best_epoch + 1}{stop}",
    ]
    for name, value in scores.items():
        lines.append(f"{name}: loss {value.loss:.4f}{unit}, {metric} {value.metric:.4f}")
    if history:
        real = sum(stats.real_steps for stats in history)
        computed = sum(
            stats.real_steps / stats.padding_efficiency
            for stats in history
            if stats.padding_efficiency
        )
        lines.append(
            f"speed: {result.real_steps_per_second:,.0f} real steps/s in training "
            f"({real / max(result.seconds, 1e-9):,.0f} over the run's {result.seconds:.1f} s "
            f"with validation), padding efficiency {real / max(computed, 1):.3f}, "
            f"{options.threads} thread{'s' if options.threads > 1 else ''}"
        )
    lines.append(f"model: {os.fspath(options.out)}")
    return lines


def _log(args: argparse.Namespace, *, progress: bool) -> Callable[[str], None] | None:
    """Per-epoch lines on stderr where bars do not render (not a terminal), unless quiet."""
    if progress or getattr(args, "quiet", False):
        return None
    return lambda line: print(line, file=sys.stderr, flush=True)


def _train(options: TrainOptions, args: argparse.Namespace) -> int:
    """The command's one path: the task, its data, the plan, (resume,) fit, save, report."""
    rank = _rank()
    if rank != 0:  # other ranks train silently
        args = argparse.Namespace(**{**vars(args), "quiet": True})
    task = choose_task(options)  # a target varying within sequences: one per step
    task.check(options, given_options(args))
    resolved = resolve(options, task.defaults)
    prepared = task.prepare(resolved, warn)
    line, _, _ = task.describe(resolved, prepared)
    if line:
        say(args, line)
    pooling, readout = plan_pooling(
        prepared.train.x.lengths,
        pooling=resolved.pooling,
        kind=task.kind,
        classification=prepared.task == "classification",
    )
    targets = task.targets(prepared)  # a store's per-step targets stay on disk (hashed only)
    encoded = targets if isinstance(targets, np.ndarray) else np.zeros(0)
    levels, kept = plan_levels(
        encoded,
        prepared.train.x.lengths,
        levels=resolved.levels,
        num_features=len(prepared.features),
        series_norm=bool(resolved.series_norm),
        classification=prepared.task == "classification",
        kind=task.kind,
    )
    resolved = dataclasses.replace(resolved, pooling=pooling, levels=levels)
    plan = plan_run(resolved, prepared, task)
    say(args, f"technique: {plan.technique} ({plan.reason})")
    say(args, f"budget: {plan.budget_reason}")
    augment, why = plan_augment(
        encoded,
        prepared.train.x.lengths,
        augment=resolved.augment,
        classification=prepared.task == "classification",
        kind=task.kind,
    )
    say(args, f"augment: {why}")
    say(args, f"readout: {readout}")
    say(args, f"levels: {kept}")
    digest = data_digest(prepared.train.x, targets)
    record = fingerprint(
        options, features=prepared.features, technique=plan.technique, digest=digest
    )
    resume = check_resume(
        options,
        record,
        args,
        planned_steps=plan.steps,
        per_step=task.kind == "step",
        rank=rank,
    )
    progress = progress_enabled(args)
    model = task.build_model(resolved, prepared)
    result = _fit(
        resolved,
        task,
        model,
        prepared,
        plan,
        augment=augment,
        resume=resume,
        progress=progress,
        log=_log(args, progress=progress),
    )
    if rank != 0:
        return 0
    scores = _save(options, task, model, prepared, result, plan)
    print("\n".join(_report_lines(resolved, task, prepared, result, scores, plan, why)))
    return 0
