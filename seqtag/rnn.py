"""Running an RNN over a padded batch without letting it read the padding: packed or flipped.

Two exact ways, same weights, same outputs at the real positions:

* :func:`run_packed` (the article's trick 2): ``pack_padded_sequence`` -> RNN -> ``pad_packed_sequence``.
  PyTorch's CPU LSTM then walks the packed steps one batch size at a time.
* :func:`run_flipped`: each direction runs on a plain padded tensor, the fastest path of the CPU
  LSTM (oneDNN). Left to right, the padding comes after each sentence, so it cannot reach a real
  position. Right to left, each sentence is first reversed *within its own length*
  (:func:`reverse_padded`), so its padding also comes last; the outputs are reversed back.
  The weights are those of the ``nn.LSTM``/``nn.GRU`` module itself (its ``*_reverse`` weights for
  the right-to-left pass), so a model can switch between both at any time.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqtag.batching import check_lengths, lengths_to_mask

__all__ = ["run_packed", "run_flipped", "reverse_padded", "locked_dropout"]


def _check_input(rnn: nn.RNNBase, x: Tensor) -> None:
    if x.dim() != 3 or x.size(-1) != rnn.input_size:
        raise ValueError(
            f"x must be (B, T, {rnn.input_size}) for this RNN (input_size={rnn.input_size}), "
            f"got shape {tuple(x.shape)}"
        )


def run_packed(
    rnn: nn.RNNBase, x: Tensor, lengths: Tensor, packed: bool = True
) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
    """Run a ``batch_first`` RNN over a padded batch without letting it see the padding.

    Args:
        rnn: an ``nn.LSTM``/``nn.GRU``/``nn.RNN`` built with ``batch_first=True``.
        x: ``(B, T, E)`` padded inputs.
        lengths: ``(B,)`` int64 on the CPU (any order: ``enforce_sorted=False`` sorts and unsorts).
        packed: ``False`` runs on the padded tensor (wrong for the backward direction).

    Returns:
        ``(outputs, h_n)``: ``outputs`` ``(B, T, D*H)`` with zeros at padded steps, ``T`` kept as
        ``x.size(1)`` (``total_length``) so the outputs line up with the labels; ``h_n`` is the
        RNN's final state (a tuple ``(h_n, c_n)`` for an LSTM), in the batch's original order.
    """
    _check_input(rnn, x)
    if not packed:
        out, state = rnn(x)
        return out, state
    lens = check_lengths(lengths, x.size(1))
    packed_x = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
    packed_out, state = rnn(packed_x)
    out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.size(1))
    return out, state


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence of a padded batch within its own length; padding stays at the end.

    Args:
        x: ``(B, T, *)`` padded batch (any dtype, any device).
        lengths: ``(B,)`` int64 lengths (any device), each in ``1..T``.

    Returns:
        ``(B, T, *)`` with ``out[b, t] = x[b, lengths[b] - 1 - t]`` for ``t < lengths[b]`` and
        ``out[b, t] = x[b, t]`` on padding. Applying it twice gives ``x`` back.
    """
    b, t = x.shape[:2]
    if lengths.shape != (b,):
        raise ValueError(f"lengths must be (B,) = ({b},), got {tuple(lengths.shape)}")
    steps = torch.arange(t, device=x.device).unsqueeze(0)  # (1, T)
    lens = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    index = torch.where(steps < lens, lens - 1 - steps, steps)  # (B, T)
    index = index.view(b, t, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


def locked_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Dropout with one mask per sequence and feature, shared by all its time steps.

    Variational (Gal & Ghahramani, 2016) or "locked" dropout: ``x`` ``(B, T, D)`` times a
    ``(B, 1, D)`` mask of ``0`` or ``1 / (1 - p)``, so a dropped feature is gone for the whole
    sentence instead of flickering from word to word. The identity when not ``training`` or ``p == 0``.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    if x.dim() != 3:
        raise ValueError(f"locked dropout needs a (B, T, D) tensor, got shape {tuple(x.shape)}")
    mask = torch.empty(x.size(0), 1, x.size(2), dtype=x.dtype, device=x.device).bernoulli_(1.0 - p)
    return x * mask.div_(1.0 - p)


def _one_direction(rnn: nn.RNNBase, x: Tensor, layer: int, suffix: str) -> Tensor:
    """One layer, one direction of ``rnn`` over the padded ``(B, T, I)`` x, from zero states."""
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if rnn.bias else [])
    params = [getattr(rnn, f"{name}_l{layer}{suffix}") for name in names]
    h0 = x.new_zeros(1, x.size(0), rnn.hidden_size)
    if isinstance(rnn, nn.LSTM):
        return torch.lstm(x, (h0, torch.zeros_like(h0)), params, rnn.bias, 1, 0.0, False, False, True)[0]
    if isinstance(rnn, nn.GRU):
        return torch.gru(x, h0, params, rnn.bias, 1, 0.0, False, False, True)[0]
    raise TypeError(f"run_flipped needs an nn.LSTM or nn.GRU, got {type(rnn).__name__}")


def run_flipped(
    rnn: nn.LSTM | nn.GRU, x: Tensor, lengths: Tensor, locked: bool = False, residual: bool = False
) -> Tensor:
    """Run a ``batch_first`` LSTM/GRU exactly over a padded batch, without packing.

    Same weights and, at real positions, the same outputs as :func:`run_packed` (up to float
    rounding); each direction of each layer runs on a plain padded tensor. Between stacked
    layers the module's own ``dropout`` applies in training, as in ``nn.LSTM``; with ``locked``,
    one mask per sentence and feature (:func:`locked_dropout`) instead of one per time step.
    With ``residual``, each layer from the second on adds its input (the states of the layer below,
    before that dropout) to its output, as UDPipe 2's tagger does; ``nn.LSTM`` has no such option.

    Args:
        rnn: ``nn.LSTM`` or ``nn.GRU`` with ``batch_first=True`` (no ``proj_size``).
        x: ``(B, T, E)`` padded inputs, on the RNN's device.
        lengths: ``(B,)`` int64 on the CPU, each in ``1..T``.

    Returns:
        ``(B, T, D*H)`` outputs, zeros at padded steps (as ``pad_packed_sequence`` gives). No final
        state: the left-to-right pass runs on over the padding, so its last state is not a
        sentence's (use :func:`run_packed` when you need ``h_n``).
    """
    _check_input(rnn, x)
    if not rnn.batch_first or getattr(rnn, "proj_size", 0):
        raise ValueError("run_flipped needs batch_first=True and no proj_size")
    lens = check_lengths(lengths, x.size(1))
    lens_dev = lens.to(x.device)
    real = lengths_to_mask(lens, x.size(1), x.device).unsqueeze(-1)  # (B, T, 1)
    out = x
    for layer in range(rnn.num_layers):
        below = out
        if layer > 0 and rnn.training and rnn.dropout > 0:
            out = (locked_dropout(out, rnn.dropout) if locked
                   else nn.functional.dropout(out, rnn.dropout, training=True))
        outputs = [_one_direction(rnn, out, layer, "")]
        if rnn.bidirectional:
            backward = _one_direction(rnn, reverse_padded(out, lens_dev), layer, "_reverse")
            outputs.append(reverse_padded(backward, lens_dev))
        out = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        if residual and layer > 0:  # both D*H wide
            out = out + below
    return out.masked_fill(~real, 0.0)
