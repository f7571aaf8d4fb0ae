r"""Length-bucketing batch sampler with token budgets, exact resume and distributed sharding.

:class:`BucketBatchSampler` yields lists of dataset indices whose sequences have similar
lengths, so padding to the batch maximum wastes little compute. Feed it to a
``torch.utils.data.DataLoader`` as ``batch_sampler`` together with
:class:`~varlen.batching.RaggedDataset` and :class:`~varlen.batching.Collate`.

Distributed training
--------------------
Every process builds the same sampler (same lengths, seed and options) and takes its own
share of each epoch's batches; ``num_replicas`` and ``rank`` default to the initialised
``torch.distributed`` process group. Every rank gets the same number of batches, so
``DistributedDataParallel`` never waits at the end of an epoch for a rank that ran out,
and each sequence is used exactly once per epoch across all ranks (unless
``drop_last=True``). Call ``set_epoch(epoch)`` on every rank at the start of every epoch,
or every epoch repeats the same order. A training script::

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader
    from varlen.batching import BucketBatchSampler, Collate, RaggedDataset

    dist.init_process_group("gloo")  # "nccl" on GPUs; rank/world size come from env://
    dataset = RaggedDataset(sequences, targets)
    sampler = BucketBatchSampler(sequences.lengths, max_tokens=8192, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=Collate())
    model = DistributedDataParallel(model)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in loader:
            ...  # forward, loss, backward, step as usual
    dist.destroy_process_group()

launched with ``torchrun`` on one machine (one process per CPU socket or per GPU)::

    torchrun --standalone --nproc-per-node=2 train.py

or on several machines, running the same command on each (node ranks 0..N-1)::

    torchrun --nnodes=2 --nproc-per-node=4 --node-rank=0 \\
        --rdzv-backend=c10d --rdzv-endpoint=host0:29500 train.py

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``, which
``init_process_group`` reads through its default ``env://`` method. On GPUs, also call
``torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))`` before building the model.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler

from varlen._checks import check_lengths_array, error_context, unplaced
from varlen.batching._plan import (
    IntArray,
    cut_budget,
    cut_fixed,
    length_order,
    split_largest,
)
from varlen.batching._validate import check_int, check_sizing

__all__ = ["BucketBatchSampler"]

_STATE_KEYS = ("epoch", "num_replicas", "num_sequences", "position", "seed")


def _check_world(num_replicas: object, rank: object) -> tuple[int, int]:
    """Return ``(num_replicas, rank)``, defaulting from an initialised process group."""
    initialised = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if initialised else 1
    if rank is None:
        rank = dist.get_rank() if initialised else 0
    replicas = check_int(None, "num_replicas", num_replicas, minimum=1)
    index = check_int(None, "rank", rank, minimum=0)
    if index >= replicas:
        raise unplaced(
            ValueError(f"rank must be in [0, num_replicas) = [0, {replicas}), got {index}.")
        )
    return replicas, index


def _check_length_table(lengths: Any) -> IntArray:
    """Return ``(n,)`` or ``(n, K)`` int64 lengths ``>= 0`` (a new array), else raise."""
    array = np.asarray(lengths)
    if array.ndim != 2:
        if array.ndim > 2:
            raise unplaced(
                ValueError(
                    "lengths must have shape (B,) or (B, K) (K lengths per sequence), "
                    f"got {array.shape}."
                )
            )
        return check_lengths_array(None, array)
    if array.shape[1] < 1:
        raise unplaced(ValueError(f"lengths of shape (B, K) need K >= 1, got {array.shape}."))
    columns = [check_lengths_array(None, array[:, k]) for k in range(array.shape[1])]
    return np.stack(columns, axis=1) if columns[0].size else array.astype(np.int64)


def _check_budget(max_tokens: object, lengths: IntArray) -> int | tuple[int, ...]:
    """Return ``max_tokens`` as an int, or a tuple of one int ``>= 1`` per length column."""
    if isinstance(max_tokens, int | np.integer) or max_tokens is None:
        return check_int(None, "max_tokens", max_tokens, minimum=1)
    K = 1 if lengths.ndim == 1 else lengths.shape[1]
    budget = tuple(max_tokens) if isinstance(max_tokens, tuple | list) else None
    if budget is None or len(budget) != K:
        raise unplaced(
            ValueError(
                f"max_tokens must be an int or a tuple of K = {K} ints (one budget per "
                f"length column), got {max_tokens!r}."
            )
        )
    return tuple(check_int(None, f"max_tokens[{k}]", b, minimum=1) for k, b in enumerate(budget))


def _warn_over_budget(lengths: IntArray, max_tokens: int | tuple[int, ...]) -> None:
    """Warn when some sequences alone exceed the token budget."""
    table = lengths.reshape(lengths.shape[0], 1) if lengths.ndim == 1 else lengths  # (n, K)
    over = np.flatnonzero((table > np.asarray(max_tokens)).any(axis=1))
    if over.size:
        longest = table[over].max(axis=0).tolist()
        warnings.warn(
            f"BucketBatchSampler: {over.size} sequence(s) are longer than max_tokens = "
            f"{max_tokens} (the longest has "
            f"{longest[0] if len(longest) == 1 else tuple(longest)} steps); "
            "each goes in a batch of its own, over the budget. Raise max_tokens or truncate "
            "these sequences.",
            UserWarning,
            stacklevel=3,
        )


class BucketBatchSampler(Sampler[list[int]]):
    """Yield batches of dataset indices with similar lengths, sharded across ranks.

    Each epoch, the sequences are sorted by length (ties, and with ``jitter`` nearby
    lengths, broken at random) and cut into batches: ``batch_size`` sequences each, or as
    many as fit a budget of ``max_tokens`` padded steps, counted as ``B * T_max`` (an
    empty sequence counts as one step). With several lengths per sequence (``lengths`` of
    shape ``(n, K)``, e.g. input and target lengths from a length function returning a
    tuple), the sort is by the first then the next ones, and every column's
    ``B * T_max[k]`` must fit its budget. A batch never exceeds the budget, except that a
    sequence longer than the budget forms a batch of its own (with a warning at
    construction). Batches are then grouped ``num_replicas`` at a time (neighbours in
    length, so ranks wait little for each other at each step), and the order of the
    groups is shuffled. Everything is a function of ``(seed, epoch)``: every rank computes
    the same plan and takes its own column.

    Across ranks, every rank yields the same number of batches. With
    ``drop_last=False`` each sequence appears exactly once per epoch across all ranks:
    when the batch count is not a multiple of ``num_replicas``, the batches with the most
    sequences are split in two (halves never exceed a budget) until it is. Only when no
    batch can be split (every batch holds one sequence, e.g. ``batch_size=1`` with fewer
    sequences than needed) are the first batches repeated, with a warning. With
    ``drop_last=True``, the ``n % batch_size`` leftover sequences (picked at random per
    epoch when shuffling) and then the surplus batches are dropped instead; with
    ``max_tokens`` only surplus batches are dropped.

    With ``shuffle=False`` there is no randomness: ties keep index order and batches come
    shortest first. ``B = 0`` (no sequences) gives no batches.

    Resuming: :meth:`state_dict` records the seed, the epoch and the number of batches this
    rank has yielded (five ints, whatever the dataset size); :meth:`load_state_dict` takes
    O(1) time (it plans nothing and replays nothing); the next pass plans that epoch as any
    epoch start does, and yields the rest of it from the saved position, exactly as an
    uninterrupted run would. A position beyond the epoch's end is refused then. A
    ``DataLoader`` with workers draws batches ahead of the training loop; to resume at the
    last batch actually trained on, set ``state["position"]`` to the number of batches
    consumed in the epoch before saving.

    Args:
        lengths: ``(n,)`` integer sequence lengths ``T_i >= 0``, indexed like the dataset,
            or ``(n, K)`` with ``K`` lengths per sequence, e.g.
            ``[length_fn(item) for item in dataset]`` with ``length_fn`` returning a tuple.
        batch_size: Sequences per batch. Exactly one of ``batch_size`` and ``max_tokens``.
        max_tokens: Budget of padded steps ``B * T_max`` per batch: one int (for every
            length column), or a tuple of ``K`` ints, one per column.
        shuffle: Randomize ties and the batch order, per epoch.
        drop_last: Drop leftovers instead of splitting or repeating (see above).
        seed: Non-negative seed; the plan of an epoch depends only on ``(seed, epoch)``.
        num_replicas: Number of ranks; defaults to the ``torch.distributed`` world size
            when a process group is initialised, else 1.
        rank: This process's rank in ``[0, num_replicas)``; defaults likewise, else 0.
        jitter: Relative noise on the sort key, ``T_i * (1 + jitter * u)`` with ``u`` in
            ``[0, 1)``: more variety between epochs for a little more padding. Default 0
            (lengths still shuffle among equals).

    Raises:
        TypeError: If ``lengths`` is not integer, or an int argument is not an int.
        ValueError: If ``lengths`` is not 1-D or 2-D or is negative, ``max_tokens`` is a
            tuple of the wrong size, both or neither of
            ``batch_size`` and ``max_tokens`` are given, a size is ``< 1``, ``seed`` or
            ``jitter`` is negative, or ``rank`` is not in ``[0, num_replicas)``.

    Example:
        >>> sampler = BucketBatchSampler([5, 1, 4, 2, 3, 1], batch_size=2, shuffle=False)
        >>> list(sampler)  # lengths (1, 1), (2, 3), (4, 5)
        [[1, 5], [3, 4], [2, 0]]
        >>> list(BucketBatchSampler([5, 1, 4, 2, 3, 1], max_tokens=6, shuffle=False))
        [[1, 5, 3], [4], [2], [0]]
        >>> pairs = [(5, 2), (1, 9), (4, 1), (2, 2)]  # (input, target) lengths
        >>> list(BucketBatchSampler(pairs, max_tokens=(8, 10), shuffle=False))
        [[1], [3, 2], [0]]
    """

    def __init__(
        self,
        lengths: Any,
        batch_size: int | None = None,
        max_tokens: int | Sequence[int] | None = None,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        jitter: float = 0.0,
    ) -> None:
        with error_context("BucketBatchSampler"):
            self._lengths = _check_length_table(lengths)
            one = max_tokens if isinstance(max_tokens, int | np.integer | None) else 1
            self.batch_size, _ = check_sizing(None, batch_size, one)
            self.max_tokens: int | tuple[int, ...] | None = (
                None if max_tokens is None else _check_budget(max_tokens, self._lengths)
            )
            self.seed = check_int(None, "seed", seed, minimum=0)
            self.num_replicas, self.rank = _check_world(num_replicas, rank)
            if not isinstance(jitter, int | float) or not jitter >= 0:
                raise unplaced(ValueError(f"jitter must be a number >= 0, got {jitter!r}."))
        self.jitter = float(jitter)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self._start = 0  # batches to skip in the next pass (set by load_state_dict)
        self._position = 0  # batches of this epoch yielded so far, counting skipped ones
        self._cache: tuple[tuple[int, int], _RankPlan] | None = None
        if self.max_tokens is not None:
            _warn_over_budget(self._lengths, self.max_tokens)

    @property
    def lengths(self) -> IntArray:
        """``(n,)`` or ``(n, K)`` int64 sequence lengths (a copy)."""
        return self._lengths.copy()

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose plan the next pass yields, from its start.

        Args:
            epoch: Epoch number ``>= 0``; call it with the same value on every rank.

        Raises:
            TypeError: If ``epoch`` is not an int.
            ValueError: If ``epoch < 0``.
        """
        self.epoch = check_int("BucketBatchSampler.set_epoch", "epoch", epoch, minimum=0)
        self._start = 0
        self._position = 0

    def __len__(self) -> int:
        return len(self._rank_batches()) - self._start

    def __iter__(self) -> Iterator[list[int]]:
        plan = self._rank_batches()
        start = self._start
        self._position = start
        for position in range(start, len(plan)):
            self._position = position + 1
            yield plan[position]
        self._start = 0

    def state_dict(self) -> dict[str, int]:
        """Return the resumable state: seed, epoch, and batches yielded by this rank.

        Returns:
            A dict of ints with keys ``epoch``, ``num_replicas``, ``num_sequences``,
            ``position`` and ``seed``.
        """
        return {
            "epoch": self.epoch,
            "num_replicas": self.num_replicas,
            "num_sequences": int(self._lengths.shape[0]),
            "position": self._position,
            "seed": self.seed,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the next pass resumes where it stopped.

        Args:
            state: A mapping from :meth:`state_dict`, possibly with ``position`` lowered to
                the number of batches actually consumed.

        Raises:
            TypeError: If a value is not an int.
            ValueError: If a key is missing, or the state was saved for another number of
                sequences or ranks. A ``position`` beyond its epoch's end raises
                ``ValueError`` at the next pass (or ``len``), when the epoch is planned.
        """
        with error_context("BucketBatchSampler.load_state_dict"):
            missing = [key for key in _STATE_KEYS if key not in state]
            if missing:
                raise unplaced(
                    ValueError(f"state must have keys {_STATE_KEYS}, missing {missing}.")
                )
            values = {
                key: check_int(None, f"state[{key!r}]", state[key], minimum=0)
                for key in _STATE_KEYS
            }
            for key, mine in (
                ("num_sequences", len(self._lengths)),
                ("num_replicas", self.num_replicas),
            ):
                if values[key] != mine:
                    raise unplaced(
                        ValueError(
                            f"state[{key!r}] must equal this sampler's {key} = {mine}, got "
                            f"{values[key]}. Build the sampler over the same data and world size."
                        )
                    )
        self.seed, self.epoch = values["seed"], values["epoch"]
        self._start = self._position = values["position"]  # checked when the epoch is planned

    def _rank_batches(self) -> _RankPlan:
        """Return this rank's batches of the current epoch (cached per seed and epoch)."""
        key = (self.seed, self.epoch)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._plan_rank())
        plan = self._cache[1]
        if self._start > len(plan):
            position, self._start, self._position = self._start, 0, 0
            raise ValueError(
                f"BucketBatchSampler.load_state_dict: state['position'] must be <= {len(plan)} "
                f"(batches of epoch {self.epoch} on this rank), got {position}."
            )
        return plan

    def _plan_rank(self) -> _RankPlan:
        """Compute the epoch's plan for all ranks and keep this rank's batches."""
        rng = np.random.default_rng([self.seed, self.epoch]) if self.shuffle else None
        order = self._kept_order(rng)
        if self.batch_size is not None:
            bounds = cut_fixed(order.shape[0], self.batch_size)
        else:
            budget = np.asarray(self.max_tokens, dtype=np.int64)
            bounds = cut_budget(self._lengths[order], budget)
        ids, bounds = self._equalize(bounds, rng)
        steps = _step_order(ids.shape[0], self.num_replicas, rng)  # (G, R) batch slots
        mine = ids[steps[:, self.rank]]  # (G,) this rank's batch ids, in step order
        starts, sizes = bounds[mine], bounds[mine + 1] - bounds[mine]
        # Keep only this rank's share of the order (n / R indices), its batches end to end.
        ends = np.cumsum(sizes)
        within = np.arange(int(ends[-1]) if ends.size else 0) - np.repeat(ends - sizes, sizes)
        return _RankPlan(order[np.repeat(starts, sizes) + within], ends - sizes, ends)

    def _kept_order(self, rng: np.random.Generator | None) -> IntArray:
        """Sort by length, then drop the ``n % batch_size`` leftovers if ``drop_last``."""
        order = length_order(self._lengths, rng=rng, jitter=self.jitter)
        n = order.shape[0]
        leftover = n % self.batch_size if self.drop_last and self.batch_size else 0
        if leftover == 0:
            return order
        if rng is None:
            return order[: n - leftover]
        return np.delete(order, rng.choice(n, size=leftover, replace=False))

    def _equalize(
        self, bounds: IntArray, rng: np.random.Generator | None
    ) -> tuple[IntArray, IntArray]:
        """Make the batch count a multiple of ``num_replicas``: drop, split, or repeat.

        Returns:
            ``(ids, bounds)``: the batch ids in plan order (a multiple of ``num_replicas``
            of them) and the bounds they index.
        """
        R = self.num_replicas
        M = bounds.shape[0] - 1
        if self.drop_last:
            keep = np.arange(M - M % R) if rng is None else np.sort(rng.permutation(M)[: M - M % R])
            return keep.astype(np.int64), bounds
        bounds, shortfall = split_largest(bounds, -M % R)
        ids = np.arange(bounds.shape[0] - 1, dtype=np.int64)
        if shortfall:
            warnings.warn(
                f"BucketBatchSampler: cannot give each of num_replicas = {R} ranks the same "
                f"number of batches without repeating: every batch holds one sequence. "
                f"Repeating {shortfall} sequence(s) this epoch. Use drop_last=True, a larger "
                "batch_size or max_tokens, or fewer ranks.",
                UserWarning,
                stacklevel=5,
            )
            ids = np.concatenate([ids, np.arange(shortfall, dtype=np.int64) % max(ids.size, 1)])
        return ids, bounds


class _RankPlan:
    """One rank's batches of one epoch, held as arrays: ``order[starts[j]:stops[j]]``.

    At 10^7 sequences over ``R`` ranks this is ``n / R`` int64 indices plus two ints per
    batch, not Python ints in lists; each batch becomes a list only when it is yielded.
    """

    def __init__(self, order: IntArray, starts: IntArray, stops: IntArray) -> None:
        self.order, self.starts, self.stops = order, starts, stops

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def __getitem__(self, j: int) -> list[int]:
        batch: list[int] = self.order[self.starts[j] : self.stops[j]].tolist()
        return batch


def _step_order(M: int, R: int, rng: np.random.Generator | None) -> IntArray:
    """Group ``M`` batches (a multiple of ``R``) into steps of ``R`` neighbours, shuffled.

    Returns:
        ``(M // R, R)`` int64 batch ids: row ``s`` is step ``s``, column ``r`` is rank ``r``.
    """
    grid = np.arange(M, dtype=np.int64).reshape(M // R, R)
    if rng is None:
        return grid
    grid = grid[rng.permutation(M // R)]
    return np.take_along_axis(grid, np.argsort(rng.random(grid.shape), axis=1), axis=1)
