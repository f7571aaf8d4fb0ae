"""Generate from a batch of prompts of different lengths, each row as if it ran alone.

:func:`generate` primes a causal model on the padded prompts in one call (varlen's recurrent
layers make each row's final state that of the prompt alone, whatever its padding and
batch-mates), then steps all unfinished rows at once, one token each. A row stops at its own end
token or its own length limit and leaves the batch; the others go on. Sampling draws from one
seeded :class:`torch.Generator` per row, one draw per generated token, so a row's tokens depend
only on its prompt, its seed and the weights: the batch gives the tokens of each prompt generated
alone with the same seed.

One caveat of floating point: CPU and GPU matrix kernels round differently for different batch
sizes, so a row's logits in a batch and alone agree to about ``1e-6`` relative, not bit for bit.
A token can only differ when two logits tie within that rounding (greedy) or a uniform draw lands
that close to a boundary of the cumulative distribution (sampling), about one step in a million.

:class:`RecurrentLM` is a small token model (embedding -> varlen LSTM/GRU -> linear) that fits
the protocol :func:`generate` expects; any module with the same call signature works.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, Protocol, TypeAlias

import numpy as np
import torch
from torch import Tensor, nn

from varlen._checks import check_choice, check_side, error_context, unplaced
from varlen._types import Padding
from varlen.data.ragged import Ragged
from varlen.nn._checks import check_lengths
from varlen.nn.functional import _mask, last_valid
from varlen.nn.recurrent import GRU, LSTM

__all__ = ["Generation", "RecurrentLM", "Strategy", "TokenModel", "generate"]

Strategy: TypeAlias = Literal["greedy", "sample"]
_STRATEGIES: tuple[Strategy, ...] = ("greedy", "sample")


class TokenModel(Protocol):
    """What :func:`generate` calls: a causal model from token ids to next-token logits.

    ``model(ids, lengths, padding=..., state=...)`` takes ``ids (B, T)`` int64, ``lengths (B,)``,
    the side of the padding and a state from an earlier call (``None``: the initial state), and
    returns ``(logits (B, T, V), state)``. The state is a tensor or a tuple of tensors with the
    batch on dimension 1 (torch's ``(L * D, B, H)`` layout); a row of length 0 must keep its
    state. Output at step ``t`` may depend on steps ``<= t`` only.
    """

    def __call__(
        self, ids: Tensor, lengths: Tensor, *, padding: Padding, state: Any
    ) -> tuple[Tensor, Any]:
        """Return ``(logits (B, T, V), state)``."""
        ...


class Generation(NamedTuple):
    """What :func:`generate` returns.

    Attributes:
        tokens: ``(B, S)`` int64 generated tokens (the prompt excluded), post-padded with
            ``pad_id``; ``S`` is the longest row's count.
        lengths: ``(B,)`` int64 tokens generated per row (its end token included).
        ended: ``(B,)`` bool, True where the row stopped at ``end_token`` (else at its limit).
    """

    tokens: Tensor
    lengths: Tensor
    ended: Tensor

    def to_lists(self) -> list[list[int]]:
        """Return each row's generated tokens as a list of ints (reads them on the host)."""
        rows = self.tokens.tolist()
        return [row[:count] for row, count in zip(rows, self.lengths.tolist(), strict=True)]


class RecurrentLM(nn.Module):
    """A causal token model: embedding -> varlen LSTM/GRU -> linear, one logit row per step.

    Args:
        vocab_size: ``V``, token ids are in ``[0, V)``.
        embedding_dim: ``E``.
        hidden_size: ``H``.
        num_layers: ``L``.
        cell: ``"lstm"`` or ``"gru"``.
        dropout: Dropout between recurrent layers.

    Example:
        >>> model = RecurrentLM(10, 4, 8)
        >>> logits, state = model(torch.tensor([[1, 2, 3], [4, 0, 0]]), torch.tensor([3, 1]))
        >>> logits.shape  # (B, T, V)
        torch.Size([2, 3, 10])
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 32,
        hidden_size: int = 64,
        num_layers: int = 1,
        *,
        cell: Literal["lstm", "gru"] = "lstm",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_choice("RecurrentLM", "cell", cell, ("lstm", "gru"))
        for name, value in (
            ("vocab_size", vocab_size),
            ("embedding_dim", embedding_dim),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RecurrentLM: {name} must be an int >= 1, got {value!r}.")
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        rnn = LSTM if cell == "lstm" else GRU
        self.rnn = rnn(embedding_dim, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(
        self,
        ids: Tensor,
        lengths: Tensor | None = None,
        *,
        padding: Padding = "post",
        state: Any = None,
    ) -> tuple[Tensor, Any]:
        """Score the next token after every step.

        Args:
            ids: ``(B, T)`` int64 token ids; padded steps may hold anything.
            lengths: ``(B,)`` real lengths; ``None``: every step is real.
            padding: Side of the padding.
            state: The state returned by an earlier call, or ``None`` (zeros).

        Returns:
            ``(logits (B, T, V), state)``: the logits at step ``t`` score token ``t + 1``
            (arbitrary at pads); the state after each row's last real step.
        """
        B, T = ids.shape
        if lengths is not None:
            lengths = check_lengths("RecurrentLM", lengths, B=B, T=T, device=ids.device)
            real = _mask(lengths, T, padding)
            ids = torch.where(real, ids, 0)  # pad ids may be out of range
        out, new_state = self.rnn(self.embedding(ids), lengths, padding=padding, hx=state)
        logits: Tensor = self.head(out)
        return logits, new_state


def _prompts(
    prompts: Any, lengths: Any, padding: Padding, device: torch.device
) -> tuple[Tensor, Tensor, Padding]:
    """Return ``(ids (B, T) int64, lengths (B,), padding)`` from any accepted prompt form."""
    if isinstance(prompts, Tensor):
        if prompts.ndim != 2:
            raise unplaced(
                ValueError(f"prompts must have shape (B, T), got {tuple(prompts.shape)}.")
            )
        B, T = prompts.shape
        given = torch.full((B,), T) if lengths is None else lengths
        return prompts.to(device), check_lengths(None, given, B=B, T=T, device=device), padding
    if lengths is not None:
        raise unplaced(
            ValueError(
                "lengths go with a padded (B, T) tensor of prompts, got them with "
                f"{type(prompts).__name__}. Drop lengths: ragged prompts carry their own."
            )
        )
    if isinstance(prompts, Ragged):
        rows: list[Any] = prompts.to_sequences()
    elif isinstance(prompts, Sequence) and not isinstance(prompts, str):
        rows = list(prompts)
    else:
        raise unplaced(
            TypeError(
                "prompts must be a (B, T) tensor, a Ragged or a list of 1-D token "
                f"sequences, got {type(prompts).__name__}."
            )
        )
    tensors = [
        torch.as_tensor(np.asarray(row) if not isinstance(row, Tensor) else row) for row in rows
    ]
    for index, row in enumerate(tensors):
        if row.ndim != 1:
            raise unplaced(
                ValueError(f"prompts[{index}] must be 1-D token ids, got shape {tuple(row.shape)}.")
            )
        if row.numel() and (
            row.dtype.is_floating_point or row.dtype == torch.bool or row.is_complex()
        ):  # the same rule as a float tensor: never truncate 1.9 to 1 ([] is empty, not float)
            raise unplaced(
                TypeError(
                    f"prompts must hold integer token ids, got dtype {row.dtype} in "
                    f"prompts[{index}]. Give ints (e.g. [[1, 2]]), not floats."
                )
            )
    sizes = torch.tensor([len(row) for row in tensors], dtype=torch.int64)
    ids = torch.zeros(len(tensors), int(sizes.max()) if len(tensors) else 0, dtype=torch.int64)
    for index, row in enumerate(tensors):
        ids[index, : len(row)] = row
    return ids.to(device), sizes.to(device), "post"


def _check_ids(ids: Tensor, lengths: Tensor, padding: Padding, vocab_size: int | None) -> None:
    if ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.is_complex():
        raise unplaced(TypeError(f"prompts must hold integer token ids, got dtype {ids.dtype}."))
    if ids.shape[0] == 0:
        raise unplaced(ValueError("prompts must hold at least one prompt, got none."))
    if bool((lengths == 0).any()):
        row = int((lengths == 0).nonzero()[0, 0])
        raise unplaced(
            ValueError(
                f"every prompt must have at least one token, got prompts[{row}] of length "
                "0. Start each prompt with a begin token the model was trained with."
            )
        )
    real = _mask(lengths, ids.shape[1], padding)
    bad = real & (ids < 0)
    if bool(bad.any()):
        b, t = (int(i) for i in bad.nonzero()[0])
        raise unplaced(
            ValueError(f"token ids must be >= 0, got prompts[{b}, {t}] == {int(ids[b, t])}.")
        )
    if vocab_size is not None:
        beyond = real & (ids >= vocab_size)
        if bool(beyond.any()):
            b, t = (int(i) for i in beyond.nonzero()[0])
            raise unplaced(
                ValueError(
                    f"token ids must be < the model's vocabulary size {vocab_size}, got "
                    f"prompts[{b}, {t}] == {int(ids[b, t])}."
                )
            )


def _vocabulary(model: Any) -> int | None:
    """The model's vocabulary size ``V``: its ``vocab_size``, or its embedding's; else None.

    A model with one :class:`torch.nn.Embedding` reads token ids through it, so ids must be
    below its ``num_embeddings``; with several, or none, the size is not known here.
    """
    size = getattr(model, "vocab_size", None)
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    if isinstance(model, nn.Module):
        embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
        if len(embeddings) == 1:
            return int(embeddings[0].num_embeddings)
    return None


def _limits(max_new_tokens: Any, B: int) -> Tensor:
    """Return ``(B,)`` int64 length limits on the CPU."""
    limits = torch.as_tensor(max_new_tokens)
    if limits.dtype.is_floating_point or limits.dtype == torch.bool:
        raise unplaced(TypeError(f"max_new_tokens must be integers, got {max_new_tokens!r}."))
    if limits.ndim == 0:
        limits = limits.expand(B)
    if limits.shape != (B,):
        raise unplaced(
            ValueError(
                f"max_new_tokens must be an int or have shape (B,) = ({B},), got "
                f"{tuple(limits.shape)}."
            )
        )
    if bool((limits < 0).any()):
        row = int((limits < 0).nonzero()[0, 0])
        raise unplaced(
            ValueError(f"max_new_tokens must be >= 0, got {int(limits[row])} for row {row}.")
        )
    return limits.to(device="cpu", dtype=torch.int64)


def _generators(
    strategy: Strategy, seeds: Any, generators: Any, B: int
) -> list[torch.Generator] | None:
    """One CPU generator per row for sampling (``None`` for greedy)."""
    if seeds is not None and generators is not None:
        raise unplaced(ValueError("give seeds or generators, not both."))
    if strategy == "greedy":
        return None
    if generators is not None:
        result = list(generators)
        if len(result) != B or not all(isinstance(g, torch.Generator) for g in result):
            raise unplaced(
                ValueError(f"generators must be {B} torch.Generator objects, one per row.")
            )
        return result
    if seeds is None:
        raise unplaced(
            ValueError(
                "strategy='sample' needs seeds (one int per prompt) or generators, got "
                "neither. The same seed gives a row the same tokens, batched or alone."
            )
        )
    seed_list = list(seeds) if not isinstance(seeds, int) else None
    if seed_list is None or len(seed_list) != B:
        raise unplaced(
            ValueError(f"seeds must be a sequence of {B} ints (one per prompt), got {seeds!r}.")
        )
    return [torch.Generator().manual_seed(int(seed)) for seed in seed_list]


def _check_sampling(temperature: float, top_k: int | None) -> None:
    if not 0.0 < temperature < float("inf"):
        raise unplaced(ValueError(f"temperature must be finite and > 0, got {temperature!r}."))
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise unplaced(ValueError(f"top_k must be an int >= 1 or None, got {top_k!r}."))


def _select_state(state: Any, rows: Tensor) -> Any:
    """Keep the batch rows ``rows`` of a state (a tensor or tuple of tensors, batch on dim 1)."""
    if isinstance(state, Tensor):
        return state.index_select(1, rows)
    parts = [part.index_select(1, rows) for part in state]
    return type(state)(*parts) if hasattr(state, "_fields") else tuple(parts)


def _choose(
    logits: Tensor,
    generators: list[torch.Generator] | None,
    *,
    temperature: float,
    top_k: int | None,
) -> Tensor:
    """Pick one token per row of ``(R, V)`` logits: arg-max, or one draw of each row's generator."""
    if generators is None:
        return logits.argmax(dim=1)
    scaled = logits.double() / temperature
    if top_k is not None and top_k < scaled.shape[1]:
        kth = scaled.topk(top_k, dim=1).values[:, -1:]  # (R, 1)
        scaled = scaled.masked_fill(scaled < kth, -torch.inf)
    cdf = torch.softmax(scaled, dim=1).cumsum(dim=1)  # (R, V)
    draws = torch.stack([torch.rand((), dtype=torch.float64, generator=g) for g in generators])
    draws = draws.to(cdf.device)[:, None] * cdf[:, -1:]
    return torch.searchsorted(cdf, draws, right=True)[:, 0].clamp(max=cdf.shape[1] - 1)


def generate(
    model: TokenModel,
    prompts: Tensor | Ragged | Sequence[Any],
    lengths: Tensor | None = None,
    *,
    padding: Padding = "post",
    max_new_tokens: int | Sequence[int] | Tensor,
    end_token: int | None = None,
    strategy: Strategy = "greedy",
    temperature: float = 1.0,
    top_k: int | None = None,
    seeds: Sequence[int] | None = None,
    generators: Sequence[torch.Generator] | None = None,
    pad_id: int = 0,
) -> Generation:
    """Continue every prompt, all rows at once, each row as if it ran alone.

    The model is primed on the whole batch in one call, then stepped one token per
    unfinished row per call. A row stops after emitting ``end_token`` (kept in its output) or
    its ``max_new_tokens``; finished rows leave the batch. Each step reads which rows are done
    on the host (one sync per step). Runs under ``torch.no_grad``; the model's mode is kept
    (call ``model.eval()`` first to turn dropout off).

    Args:
        model: A :class:`TokenModel`, e.g. :class:`RecurrentLM`.
        prompts: ``(B, T)`` int token ids padded on the ``padding`` side (with ``lengths``),
            a :class:`varlen.Ragged` of ``(T_i,)`` ids, or a list of ``B`` 1-D id sequences.
            Every prompt needs ``T_i >= 1``.
        lengths: ``(B,)`` prompt lengths, only with a padded tensor (``None``: all ``T``).
        padding: Side of the padding of a padded tensor.
        max_new_tokens: The most tokens to generate, one int for all rows or ``(B,)``.
        end_token: A token that ends its row; ``None``: rows run to their limit.
        strategy: ``"greedy"`` (arg-max; ties go to the lowest id) or ``"sample"``.
        temperature: Divides the logits before sampling (> 0).
        top_k: Sample among the ``k`` highest logits only (ties at the ``k``-th kept).
        seeds: One seed per row for sampling; row ``i`` draws from
            ``torch.Generator().manual_seed(seeds[i])``.
        generators: One CPU generator per row instead of seeds (advanced by the draws).
        pad_id: Written after each row's last generated token.

    Returns:
        A :class:`Generation` with ``tokens (B, S)``, ``lengths (B,)`` and ``ended (B,)``.

    Raises:
        TypeError: If prompts are not integer ids (a float tensor or a list of floats) or of
            an unknown type.
        ValueError: If a prompt is empty, a token id is negative or at least the model's
            vocabulary size (its ``vocab_size``, or its one embedding's ``num_embeddings``),
            a limit is negative, sampling lacks seeds, or an option is out of range.

    Example:
        >>> model = RecurrentLM(5, 4, 8).eval()
        >>> out = generate(model, [[1, 2, 3], [4]], max_new_tokens=[2, 3])
        >>> out.lengths
        tensor([2, 3])
    """
    with error_context("generate"):
        padding = check_side(None, "padding", padding)
        strategy = check_choice(None, "strategy", strategy, _STRATEGIES)
        _check_sampling(temperature, top_k)
        device = next((p.device for p in _parameters(model)), torch.device("cpu"))
        ids, sizes, padding = _prompts(prompts, lengths, padding, device)
        _check_ids(ids, sizes, padding, _vocabulary(model))
        B = ids.shape[0]
        limits = _limits(max_new_tokens, B)
        rngs = _generators(strategy, seeds, generators, B)
    with torch.no_grad():
        logits, state = model(ids.to(torch.int64), sizes, padding=padding, state=None)
        next_logits = last_valid(logits, sizes, padding=padding)  # (B, V)
        return _run(model, next_logits, state, limits, rngs, end_token, temperature, top_k, pad_id)


def _parameters(model: Any) -> list[Tensor]:
    return list(model.parameters()) if isinstance(model, nn.Module) else []


def _run(
    model: TokenModel,
    next_logits: Tensor,
    state: Any,
    limits: Tensor,
    rngs: list[torch.Generator] | None,
    end_token: int | None,
    temperature: float,
    top_k: int | None,
    pad_id: int,
) -> Generation:
    """The stepping loop: choose, record, drop finished rows, step the rest."""
    B, device = next_logits.shape[0], next_logits.device
    longest = int(limits.max())
    tokens = torch.full((B, longest), pad_id, dtype=torch.int64)
    counts = torch.zeros(B, dtype=torch.int64)
    ended = torch.zeros(B, dtype=torch.bool)
    active = torch.arange(B)[limits > 0]  # rows still generating, on the CPU
    next_logits, state = next_logits[active.to(device)], _select_state(state, active.to(device))
    for step in range(longest):
        if len(active) == 0:
            break
        row_rngs = None if rngs is None else [rngs[int(row)] for row in active]
        chosen = _choose(next_logits, row_rngs, temperature=temperature, top_k=top_k).cpu()
        tokens[active, step] = chosen
        counts[active] += 1
        if end_token is not None:
            ended[active] = chosen == end_token
        going = ~ended[active] & (limits[active] > step + 1)  # (R,)
        if not bool(going.any()):
            break
        keep = going.nonzero()[:, 0]
        active, chosen = active[keep], chosen[keep]
        state = _select_state(state, keep.to(device))
        ones = torch.ones(len(active), dtype=torch.int64, device=device)
        logits, state = model(chosen[:, None].to(device), ones, padding="post", state=state)
        next_logits = logits[:, 0]
    return Generation(tokens[:, : int(counts.max()) if B else 0], counts, ended)
