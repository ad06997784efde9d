"""Reports of a suite run: the attention table, the GPU targets, a plain-text summary."""
from __future__ import annotations

from ..recorded import IMPLS, describe_impl

_BACKEND = "sdpa backend"


def format_table(records: list[dict]) -> str:
    """Plain-text table: one row per (dtype, d, causal, N), one TFLOP/s (peak GiB) column per impl.

    A last column names the SDPA backend torch ran ('unrecorded' in runs before schema 2); a
    footnote says what each impl's rows measured.
    """
    impls = [i for i in IMPLS if any(r["impl"] == i for r in records)]
    rows, header = {}, ["dtype", "d", "causal", "N"] + impls + ([_BACKEND] if "sdpa" in impls else [])
    for r in records:
        key = (r["dtype"], r["head_dim"], r["causal"], r["n_q"])
        cell = r["status"] if r["status"] != "ok" else f"{r['tflops']:.3g}"
        if r["status"] == "ok" and r["peak_bytes"] is not None:
            cell += f" ({r['peak_bytes'] / 2**30:.2g} GiB)"
        rows.setdefault(key, {})[r["impl"]] = cell
        if r["impl"] == "sdpa":
            rows[key][_BACKEND] = r.get("backend") or "unrecorded"
    lines = [header] + [[k[0], str(k[1]), str(k[2]), str(k[3])] + [rows[k].get(i, "-") for i in header[4:]]
                        for k in rows]
    widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
    text = ["  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in lines]
    notes = [f"  {i}: {describe_impl(i)}" for i in impls]
    return "\n".join([text[0], "-" * len(text[0])] + text[1:]
                      + ["(TFLOP/s in each row's dtype; peak memory above the inputs)"] + notes)


def check_targets(result: dict, *, min_n: int = 4096, ratio: float = 1.0, peak_fraction: float = 0.5) -> list[dict]:
    """The GPU targets: Triton ≥ `ratio`× SDPA's TFLOP/s for N ≥ min_n, and ≥ `peak_fraction` of dense peak.

    One entry per (dtype, d, causal) group plus one for the peak; each says passed or not.
    """
    from .. import hardware

    recs = [r for r in result["attention"] if r["status"] == "ok"]
    by_key = {(r["impl"], r["dtype"], r["head_dim"], r["causal"], r["n_q"]): r for r in recs}
    checks = []
    for dtype, d, causal in sorted({(r["dtype"], r["head_dim"], r["causal"]) for r in recs}):
        ratios = [by_key[("triton", dtype, d, causal, n)]["tflops"] / by_key[("sdpa", dtype, d, causal, n)]["tflops"]
                  for (impl, dt, hd, c, n) in by_key
                  if impl == "triton" and (dt, hd, c) == (dtype, d, causal) and n >= min_n
                  and ("sdpa", dtype, d, causal, n) in by_key]
        if ratios:
            checks.append({"target": f"Triton/SDPA TFLOP/s, {dtype} d={d} causal={causal}, N>={min_n}",
                           "value": min(ratios), "threshold": ratio, "passed": min(ratios) >= ratio})
    triton_recs = [r for r in recs if r["impl"] == "triton"]
    spec = hardware.lookup(result["device"]["name"])
    if triton_recs and spec is not None:
        best = max(triton_recs, key=lambda r: r["tflops"])
        key = hardware.DTYPE_NAMES[best["dtype"]]
        peak = spec.peak(key) / 1e12
        checks.append({"target": f"best Triton TFLOP/s vs {spec.name} dense {key} peak {peak:.0f} "
                                 f"({best['dtype']} d={best['head_dim']} causal={best['causal']} N={best['n_q']})",
                       "value": best["tflops"] / peak, "threshold": peak_fraction,
                       "passed": best["tflops"] / peak >= peak_fraction})
    return checks


def format_targets(checks: list[dict]) -> str:
    return "\n".join(f"{'PASS' if c['passed'] else 'MISS'}  {c['target']}: {c['value']:.3f} "
                     f"(target >= {c['threshold']})" for c in checks) or "(no GPU targets: no Triton/SDPA GPU runs)"


def summary(result: dict) -> str:
    """Human-readable report of a run: provenance, attention table, OOM, prefill/decode, matmul, targets."""
    dev, ver = result["device"], result["versions"]
    lines = [f"{dev['name']} | torch {ver['torch']} | triton {ver['triton']} | CUDA {ver['cuda']} | "
             f"{result['created']} | {result['elapsed_s']:.0f} s", "", format_table(result["attention"]), ""]
    oom = result["naive_oom"]
    who = f"{oom.get('impl', 'naive')} attention ({oom.get('dtype')} inputs)"
    lines.append(f"{who} out of memory at N = {oom['n']}" if oom["n"] else f"{who} OOM: none ({oom['note']})")
    kv = result["kv_cache"]
    if kv["status"] == "ok":
        lines.append(f"prefill (s, {kv.get('dtype')}): "
                     + ", ".join(f"N={r['n']}: {r['median_s']:.3g}" for r in kv["prefill"]))
        lines.append(f"decode step (s, {kv.get('dtype')}): "
                     + ", ".join(f"cache={r['n']}: {r['median_s']:.3g}" for r in kv["decode"]))
    else:
        lines.append(f"prefill/decode skipped: {kv['note']}")
    lines.append("matmul TFLOP/s: " + ", ".join(f"{r['dtype']} n={r['n']}: {r['tflops']:.3g}"
                                                for r in result["matmul"]))
    if dev["type"] == "cuda":
        lines += ["", format_targets(check_targets(result))]
    return "\n".join(lines)
