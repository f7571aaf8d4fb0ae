"""The per-sequence oracle for recurrent layers: each sequence cut to its real steps, run alone.

Written step by step from the textbook equations (torch's gate order), so it shares no code
with varlen. ``test_reference_matches_torch`` checks it against ``torch.nn.LSTM``/``GRU`` on
single unpadded sequences.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _params(module: nn.RNNBase, layer: int, direction: int) -> dict[str, Tensor | None]:
    suffix = f"_l{layer}" + ("_reverse" if direction else "")
    return {
        name: getattr(module, f"{name}{suffix}", None)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    }


def _affine(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    return x @ w.T + (b if b is not None else 0)


def _lstm_step(
    x: Tensor, h: Tensor, c: Tensor, p: dict[str, Tensor | None]
) -> tuple[Tensor, Tensor]:
    assert p["weight_ih"] is not None
    assert p["weight_hh"] is not None
    gates = _affine(x, p["weight_ih"], p["bias_ih"]) + _affine(h, p["weight_hh"], p["bias_hh"])
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    if p["weight_hr"] is not None:
        h = h @ p["weight_hr"].T
    return h, c


def _gru_step(x: Tensor, h: Tensor, p: dict[str, Tensor | None]) -> Tensor:
    assert p["weight_ih"] is not None
    assert p["weight_hh"] is not None
    gi = _affine(x, p["weight_ih"], p["bias_ih"]).chunk(3, dim=-1)
    gh = _affine(h, p["weight_hh"], p["bias_hh"]).chunk(3, dim=-1)
    r = torch.sigmoid(gi[0] + gh[0])
    z = torch.sigmoid(gi[1] + gh[1])
    n = torch.tanh(gi[2] + r * gh[2])
    return (1 - z) * n + z * h


def run_sequence(
    module: nn.RNNBase, x: Tensor, hx: tuple[Tensor, ...] | None = None
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run one unpadded sequence ``x (T_i, F)`` through ``module``'s weights, step by step.

    ``hx`` holds this sequence's initial states, each ``(L * D, H_k)``. Returns the output
    ``(T_i, D * H_out)`` and the final states, each ``(L * D, H_k)``, in torch's layout.
    """
    is_lstm = isinstance(module, nn.LSTM)
    D = 2 if module.bidirectional else 1
    H, H_out = module.hidden_size, (module.proj_size or module.hidden_size)
    finals: list[list[Tensor]] = [[], []]
    layer_input = x
    for layer in range(module.num_layers):
        outs = []
        for d in range(D):
            k = layer * D + d
            h = hx[0][k] if hx is not None else x.new_zeros(H_out)
            c = hx[1][k] if hx is not None and is_lstm else x.new_zeros(H)
            p = _params(module, layer, d)
            steps = range(len(layer_input) - 1, -1, -1) if d else range(len(layer_input))
            out = [x.new_zeros(H_out)] * len(layer_input)
            for t in steps:
                if is_lstm:
                    h, c = _lstm_step(layer_input[t], h, c, p)
                else:
                    h = _gru_step(layer_input[t], h, p)
                out[t] = h
            outs.append(torch.stack(out) if out else x.new_zeros(0, H_out))
            finals[0].append(h)
            finals[1].append(c)
        layer_input = torch.cat(outs, dim=-1)
    states = (
        (torch.stack(finals[0]), torch.stack(finals[1])) if is_lstm else (torch.stack(finals[0]),)
    )
    return layer_input, states
