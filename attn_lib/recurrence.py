"""Recurrences beside attention (ch. 1): what runs step by step and what can run at once.

A recurrent network (RNN, LSTM) carries a state h_t through the sequence; a nonlinear step
h_t = tanh(W h_(t-1) + x_t) must wait for h_(t-1), so N tokens are N dependent steps.
State-space models (S4, Mamba) use a *linear* recurrence h_t = a_t * h_(t-1) + b_t
(elementwise). Composing two such steps is again one (a2*a1, a2*b1 + b2), an associative
operation, so all N states come out of a parallel scan in ceil(log2 N) vectorised steps.
`linear_recurrence` and `linear_scan` compute the same states; `rnn_states` has no scan.

Shapes: x, a, b are torch tensors (..., N, d), time on axis -2; w is (d, d); h0 (..., d).
"""
from __future__ import annotations

from ._checks import _is_float, check_tensor


def _check_seq(name: str, x) -> None:
    check_tensor(name, x)
    if x.ndim < 2 or 0 in tuple(x.shape[-2:]):
        raise ValueError(f"{name} must have shape (..., N, d) with N, d >= 1, "
                         f"got {tuple(x.shape)}")
    if not _is_float(x.dtype):
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")


def _check_pair(a, b) -> None:
    _check_seq("a", a)
    _check_seq("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got a {tuple(a.shape)} "
                         f"and b {tuple(b.shape)}")


def _check_h0(h0, like):
    if h0 is None:
        return like.new_zeros(like.shape[:-2] + like.shape[-1:])  # (..., d)
    check_tensor("h0", h0)
    want = tuple(like.shape[:-2] + like.shape[-1:])
    if tuple(h0.shape) != want:
        raise ValueError(f"h0 must have shape {want}, got {tuple(h0.shape)}")
    if h0.dtype != like.dtype:
        raise TypeError(f"h0 must have the inputs' dtype {like.dtype}, got {h0.dtype}")
    return h0


def rnn_states(x, w, h0=None):
    """States of h_t = tanh(W h_(t-1) + x_t): N dependent steps of 2·d² FLOPs. (..., N, d)."""
    _check_seq("x", x)
    check_tensor("w", w)
    d = x.shape[-1]
    if tuple(w.shape) != (d, d):
        raise ValueError(f"w must have shape ({d}, {d}) for x {tuple(x.shape)}, "
                         f"got {tuple(w.shape)}")
    import torch

    h = _check_h0(h0, x)
    out = torch.empty_like(x)
    for t in range(x.shape[-2]):  # each step needs the previous state: no parallelism
        h = torch.tanh(h @ w.T + x[..., t, :])
        out[..., t, :] = h
    return out


def linear_recurrence(a, b, h0=None):
    """States of h_t = a_t * h_(t-1) + b_t, one step per token (sequential). (..., N, d)."""
    _check_pair(a, b)
    import torch

    h = _check_h0(h0, a)
    out = torch.empty_like(b)
    for t in range(a.shape[-2]):
        h = a[..., t, :] * h + b[..., t, :]
        out[..., t, :] = h
    return out


def linear_scan(a, b, h0=None):
    """The same states as `linear_recurrence`, by a parallel scan (Hillis-Steele).

    After the step with offset s, position t holds the composition of steps t-2s+1..t
    (as a pair A, B with h_t = A * h_(t-2s) + B); ceil(log2 N) steps, each vectorised
    over all N positions: O(N log N) work, but no step waits on N others.
    """
    _check_pair(a, b)
    import torch

    h0 = _check_h0(h0, a)
    A, B = a.clone(), b.clone()  # (..., N, d)
    n, s = a.shape[-2], 1
    while s < n:
        # compose (A, B) at t with (A, B) at t - s: (A_t A_(t-s), A_t B_(t-s) + B_t)
        B_new = torch.addcmul(B[..., s:, :], A[..., s:, :], B[..., :-s, :])
        A_new = A[..., s:, :] * A[..., :-s, :]
        B = torch.cat([B[..., :s, :], B_new], dim=-2)
        A = torch.cat([A[..., :s, :], A_new], dim=-2)
        s *= 2
    return torch.addcmul(B, A, h0.unsqueeze(-2))  # h_t = A_t * h0 + B_t


def scan_steps(n: int) -> int:
    """Vectorised steps `linear_scan` takes for n tokens: ceil(log2 n) (0 for n = 1)."""
    from ._checks import check_positive_int

    n = check_positive_int("n", n)
    return (n - 1).bit_length()
