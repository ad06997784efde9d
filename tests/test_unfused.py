"""attn_lib.unfused: bytes counted from real aten ops equal the closed form."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attn_lib import reference, unfused


@settings(max_examples=25)
@given(
    batch=st.integers(1, 3),
    heads=st.integers(1, 3),
    n=st.integers(1, 24),
    d=st.integers(1, 16),
    causal=st.booleans(),
    dropout=st.sampled_from([0.0, 0.1, 0.5]),
    backward=st.booleans(),
    dtype=st.sampled_from([torch.float16, torch.float32, torch.float64]),
)
def test_counted_bytes_equal_closed_form(
    batch, heads, n, d, causal, dropout, backward, dtype
):
    ops = unfused.count_unfused(
        batch,
        heads,
        n,
        d,
        causal=causal,
        dropout=dropout,
        backward=backward,
        dtype=dtype,
    )
    want = unfused.closed_form(
        batch,
        heads,
        n,
        d,
        bytes_per_value=dtype.itemsize,
        causal=causal,
        dropout=dropout,
        backward=backward,
    )
    assert unfused.by_step(ops) == want
    assert unfused.total_bytes(ops) == sum(want.values())


def test_real_device_counts_like_meta():
    kw = dict(causal=True, dropout=0.1, backward=True, dtype=torch.float32)
    cpu = unfused.count_unfused(2, 2, 12, 4, device="cpu", **kw)
    meta = unfused.count_unfused(2, 2, 12, 4, **kw)
    assert [(o.op, o.step, o.phase, o.total) for o in cpu] == [
        (o.op, o.step, o.phase, o.total) for o in meta
    ]


def test_forward_runs_the_six_kernels_in_order():
    ops = unfused.count_unfused(1, 2, 32, 8)
    assert [o.step for o in ops] == list(unfused.STEPS)
    assert [o.op for o in ops][:1] == ["aten.bmm"] and ops[-1].op == "aten.bmm"
    # every step but the matmuls moves at least one N×N read and one N×N write
    n2 = 2 * 32 * 32 * 2
    assert all(o.read_bytes >= n2 and o.write_bytes >= n2 for o in ops[1:-1])


def test_module_computes_attention():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 9, 4, dtype=torch.float64) for _ in range(3))
    mod = unfused.standard_attention_module(16, causal=True, dropout=0.1).eval()
    want = reference.attention(q.numpy(), k.numpy(), v.numpy(), causal=True)
    assert torch.allclose(mod(q, k, v), torch.from_numpy(want), atol=1e-12)


def test_traffic_mode_records_each_op_it_sees():
    a, b = torch.ones(4, 8, 16), torch.ones(4, 16, 8)
    with unfused.TrafficMode() as mode:
        torch.bmm(a, b)
    (op,) = mode.ops
    assert isinstance(op, unfused.OpTraffic)
    assert (op.op, op.step, op.phase) == ("aten.bmm", "QKᵀ", "forward")
    assert (op.read_bytes, op.write_bytes, op.total) == (2 * 512 * 4, 256 * 4, 5120)
    with pytest.raises(ValueError, match="phase"):
        unfused.OpTraffic("aten.bmm", "QKᵀ", "sideways", 0, 0)


def test_broadcast_tensor_counts_distinct_elements():
    t = torch.zeros(5, 1, dtype=torch.float32).expand(5, 7)
    assert unfused.tensor_bytes(t) == 5 * 4


def test_unfused_exceeds_algorithm0():
    # six kernels instead of three passes: 10 N×N transfers (+ a bool mask) instead of 4
    ratio = unfused.unfused_over_algorithm0(1024, 64)
    assert isinstance(ratio, float) and 2.5 < ratio < 2.75


def test_figure2_comparison_is_plain_floats():
    out = unfused.figure2_comparison()
    assert all(type(v) is float for v in out.values())
    assert (
        out["reported_standard_hbm_gb"] == 40.3 and out["reported_flash_hbm_gb"] == 4.4
    )
    assert (
        out["standard_hbm_gb"]
        > out["standard_forward_hbm_gb"]
        > out["flash_forward_hbm_gb"]
    )
    # the config: batch 64 × 16 heads, N = 1024, d = 64, forward + backward matmuls
    # 12·N²·d
    assert out["standard_gflops"] == pytest.approx(12 * 1024**2 * 64 * 64 * 16 / 1e9)


@pytest.mark.parametrize(
    "bad, error",
    [(dict(n=0), ValueError), (dict(d=-1), ValueError), (dict(batch=1.5), TypeError),
     (dict(dropout=1.0), ValueError)],
)
def test_rejects_bad_arguments(bad, error):
    kw = dict(batch=1, heads=1, n=4, d=2) | bad
    name = next(iter(bad))
    with pytest.raises(error, match=name):
        unfused.count_unfused(
            kw.pop("batch"), kw.pop("heads"), kw.pop("n"), kw.pop("d"), **kw
        )
