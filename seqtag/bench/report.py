"""From measured rows to answers: speed ratios with the spread of their rounds, the targets, and
the plain-text report ``python -m seqtag bench`` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["RATIO_KEYS", "TARGETS", "train_speed", "speed_ratio", "ratio_range", "compute_ratios",
           "other_ratios", "ratio_spreads", "check_targets", "explain", "format_report"]

RATIO_KEYS: dict[str, str] = {
    "bucketed_packed_vs_per_sentence": "per_sentence",
    "bucketed_packed_vs_random_padded": "random_padded",
    "bucketed_packed_vs_random_packed": "random_packed",
}
OTHER_KEYS: dict[str, tuple[str, str]] = {
    "bucketed_padded_vs_bucketed_packed": ("bucketed_padded", "bucketed_packed"),
    "bucketed_flipped_vs_bucketed_packed": ("bucketed_flipped", "bucketed_packed"),
    "bucketed_flipped_vs_per_sentence": ("bucketed_flipped", "per_sentence"),
    "bucketed_flipped_vs_random_padded": ("bucketed_flipped", "random_padded"),
}
# Targets for the 2-core CPU the book is built on; (key, comparison, bound, what it is).
TARGETS: tuple[tuple[str, str, float, str], ...] = (
    ("bucketed_packed_vs_per_sentence", ">=", 12.0, "training speed-up over one sentence per step"),
    ("bucketed_packed_vs_random_padded", ">=", 1.2, "training speed-up over random padded batches"),
    ("bucketed_pad_fraction", "<=", 0.05, "share of padded positions with bucketing (benchmark pool)"),
    ("roofline_fraction", ">=", 0.25, "training FLOP/s over measured GEMM FLOP/s"),
)


def _row(results: Sequence[dict[str, Any]], strategy: str, batch_size: int) -> dict[str, Any] | None:
    for r in results:
        if r["strategy"] == strategy and (strategy == "per_sentence" or r["batch_size"] == batch_size):
            return r
    return None


def train_speed(results: Sequence[dict[str, Any]], strategy: str, batch_size: int) -> float | None:
    """Training tokens/s of ``strategy`` at ``batch_size`` (``per_sentence``: at 1), else ``None``."""
    row = _row(results, strategy, batch_size)
    return None if row is None else float(row["train_tokens_per_s"])


def speed_ratio(results: Sequence[dict[str, Any]], fast: str, slow: str, batch_size: int) -> float | None:
    """``train_speed(fast) / train_speed(slow)`` at ``batch_size``; ``None`` if either is missing."""
    a, b = train_speed(results, fast, batch_size), train_speed(results, slow, batch_size)
    return None if a is None or not b else a / b


def ratio_range(results: Sequence[dict[str, Any]], fast: str, slow: str, batch_size: int) -> dict[str, Any] | None:
    """The ratio ``fast / slow`` in each timed round, as ``{"min", "max", "rounds"}``.

    Rounds are paired (round ``r`` of both rows ran back to back), so the range shows how much
    the ratio moved while the benchmark ran. ``None`` when a row is missing or the two rows were
    not timed in the same rounds.
    """
    a, b = _row(results, fast, batch_size), _row(results, slow, batch_size)
    if a is None or b is None or "train_seconds" not in a or len(a["train_seconds"]) != len(b.get("train_seconds", ())):
        return None
    per_round = [(a["tokens"] / ta) / (b["tokens"] / tb)
                 for ta, tb in zip(a["train_seconds"], b["train_seconds"], strict=True)]
    return {"min": min(per_round), "max": max(per_round), "rounds": len(per_round)}


def compute_ratios(results: Sequence[dict[str, Any]], batch_size: int) -> dict[str, float | None]:
    """Training-throughput ratios of ``bucketed_packed`` at ``batch_size`` over the baselines.

    ``per_sentence`` is compared at its own batch size (1); the others at ``batch_size``.
    A ratio whose two rows are not both in ``results`` is ``None``.
    """
    return {key: speed_ratio(results, "bucketed_packed", slow, batch_size) for key, slow in RATIO_KEYS.items()}


def other_ratios(results: Sequence[dict[str, Any]], batch_size: int) -> dict[str, Any]:
    """Ratios that explain the main ones: what packing costs, what the flipped BiLSTM gains,
    and the best batch size for ``bucketed_packed`` against ``per_sentence``."""
    out: dict[str, Any] = {key: speed_ratio(results, a, b, batch_size) for key, (a, b) in OTHER_KEYS.items()}
    sizes = sorted({r["batch_size"] for r in results if r["strategy"] == "bucketed_packed"})
    best = [(speed_ratio(results, "bucketed_packed", "per_sentence", bs), bs) for bs in sizes]
    best = [(v, bs) for v, bs in best if v is not None]
    if best:
        value, bs = max(best)
        out["best_bucketed_packed_vs_per_sentence"] = {"ratio": value, "batch_size": bs}
    return out


def ratio_spreads(results: Sequence[dict[str, Any]], batch_size: int) -> dict[str, dict[str, Any] | None]:
    """:func:`ratio_range` for every ratio of :func:`compute_ratios` and :func:`other_ratios`."""
    pairs = {key: ("bucketed_packed", slow) for key, slow in RATIO_KEYS.items()} | OTHER_KEYS
    return {key: ratio_range(results, a, b, batch_size) for key, (a, b) in pairs.items()}


def check_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The :data:`TARGETS` against ``report``: ``[{"name", "value", "bound", "op", "met"}, ...]``.

    ``met`` is ``None`` when the value was not measured (a strategy left out).
    """
    values = dict(report["ratios"])
    values["bucketed_pad_fraction"] = report["pad_fraction"]["bucketed"]
    values["roofline_fraction"] = report["roofline_fraction"]
    rows = []
    for name, op, bound, what in TARGETS:
        value = values.get(name)
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        rows.append({"name": name, "what": what, "op": op, "bound": bound, "value": value, "met": met})
    return rows


def _fmt(value: float | None, unit: str = "x") -> str:
    return "n/a" if value is None else f"{value:.2f}{unit}"


def explain(report: dict[str, Any]) -> list[str]:
    """One line per target not met, with the measurements of this run that explain it."""
    results, bs = report["results"], report["ratio_batch_size"]
    other = report.get("other_ratios", {})
    lines = []
    for t in report["targets"]:
        if t["met"] is not False:
            continue
        if t["name"] == "bucketed_packed_vs_per_sentence":
            best = other.get("best_bucketed_packed_vs_per_sentence", {})
            row = _row(results, "per_sentence", 1)
            mean = 0.0 if row is None else row["tokens"] / max(1, row["sentences"])
            lines.append(
                f"- {t['name']}: one sentence per step pays the per-step costs (Adam over every "
                f"parameter, the dense embedding gradient, kernel launches) for ~{mean:.0f} tokens; "
                f"packing costs bucketed batches {_fmt(other.get('bucketed_padded_vs_bucketed_packed'))} "
                f"here (padded / packed), the exact flipped BiLSTM reaches "
                f"{_fmt(other.get('bucketed_flipped_vs_per_sentence'))} and bucketed_packed at batch "
                f"{best.get('batch_size', 'n/a')} reaches {_fmt(best.get('ratio'))}."
            )
        elif t["name"] == "bucketed_packed_vs_random_padded":
            pad = report["pad_fraction"]
            lines.append(
                f"- {t['name']}: random batches pad {pad['random']:.0%} of positions, bucketed "
                f"{pad['bucketed']:.0%}, but packing costs {_fmt(other.get('bucketed_padded_vs_bucketed_packed'))}"
                f" (bucketed padded / packed); the flipped BiLSTM gets "
                f"{_fmt(other.get('bucketed_flipped_vs_random_padded'))}."
            )
        elif t["name"] == "bucketed_pad_fraction":
            lines.append(f"- {t['name']}: raise --pool-factor (now {report['config']['pool_factor']}): "
                         "larger pools sort more sentences together.")
        elif t["name"] == "roofline_fraction":
            lines.append(
                f"- {t['name']}: the GEMMs alone reach {report['gemm_flops_per_s'] / 1e9:.1f} GFLOP/s at "
                f"the model's shapes (B={bs}); the rest of a step (element-wise cell math, packing, "
                "the optimizer, Python) is not matmul work."
            )
    return lines


def format_report(report: dict[str, Any]) -> str:
    """A plain-text summary: the machine, the results table, ratios with their spread, padding
    (benchmark and training pools), roofline, tagging speed and the target table."""
    m = report["machine"]
    load = m.get("load_average") or ["?"]
    end = m.get("load_average_end") or ["?"]
    lines = [
        f"device {report['device']} ({m.get('gpu') or m.get('cpu')}, {m.get('cpu_count')} CPUs), "
        f"torch {report['torch']}, {report['threads']} thread(s), schedule {report['schedule']}, "
        f"load average {load[0]} before, {end[0]} after; corpus {report['corpus']}",
        "",
        f"{'strategy':<16} {'batch':>5} {'train tok/s':>12} {'spread':>7} {'infer tok/s':>12} {'pad':>6} "
        f"{'epoch pad':>9} {'roofline':>8} {'peak MB':>8}  BiLSTM",
    ]
    for r in report["results"]:
        lines.append(
            f"{r['strategy']:<16} {r['batch_size']:>5} {r['train_tokens_per_s']:>12,.0f} {r['train_spread']:>7.1%} "
            f"{r['infer_tokens_per_s']:>12,.0f} {r['pad_fraction']:>6.1%} {r['epoch_pad_fraction']:>9.1%} "
            f"{r['roofline_fraction']:>8.1%} {r['peak_memory_mb']:>8.0f}  "
            f"{'correct' if r['correct'] else 'WRONG (reads padding)'}"
        )
    bs = report["ratio_batch_size"]
    spread = report.get("ratio_spread", {})
    lines += ["", f"training speed ratios at batch size {bs} (median of rounds; range over the rounds):"]
    for key, value in {**report["ratios"], **report.get("other_ratios", {})}.items():
        if isinstance(value, dict):
            key, value = f"{key} (batch {value['batch_size']})", value["ratio"]
        rng = spread.get(key)
        where = "" if not rng else f"  ({rng['min']:.2f}-{rng['max']:.2f} over {rng['rounds']} rounds)"
        lines.append(f"  {key:<44} {_fmt(value):>7}{where}")
    pad, padding = report["pad_fraction"], report.get("padding", {})
    lines.append(f"padding of one epoch at batch size {bs}, benchmark pool of {report['config']['pool_factor']} "
                 f"batches: random {pad['random']:.1%}, bucketed {pad['bucketed']:.1%}")
    if "training_pool" in padding:
        tp = padding["training_pool"]
        lines.append(f"  (training's pool of {tp['pool_factor']} batches: bucketed {tp['bucketed']:.1%})")
    f, shape = report["flops_per_token"], report["gemm_shape"]
    lines.append(
        f"FLOPs per token: forward {f['forward']:,}, training {f['train']:,} (3x forward); "
        f"GEMM at the model's shapes (B={shape['batch_size']}, T={shape['seq_len']}): "
        f"{report['gemm_flops_per_s'] / 1e9:.1f} GFLOP/s (large square GEMM: "
        f"{report['gemm_peak_flops_per_s'] / 1e9:.1f} GFLOP/s)"
    )
    tagging = report.get("tagging")
    if tagging:
        runs = ", ".join(f"{r['words_per_s']:,.0f} words/s with {r['threads']} thread(s)" for r in tagging["runs"])
        lines.append(f"tagging {tagging['corpus']} on the CPU ({tagging['model']}, batches of "
                     f"{tagging['batch_size']}): {runs}")
    lines += ["", f"targets ({'set for the 2-core CPU' if report['device'] != 'cpu' else 'CPU'}):"]
    for t in report["targets"]:
        value = "n/a" if t["value"] is None else f"{t['value']:.3f}"
        status = {True: "met", False: "NOT MET", None: "not measured"}[t["met"]]
        lines.append(f"  {t['name']:<36} {value:>8} {t['op']} {t['bound']:<5} {status:<13} ({t['what']})")
    why = explain(report)
    if why:
        lines += ["", "why the targets not met were missed (measured in this run):", *why]
    if any(not r["correct"] for r in report["results"]):
        lines += ["", "random_padded and bucketed_padded are WRONG for a bidirectional LSTM: its "
                  "right-to-left direction reads the padding before each sentence's last word."]
    return "\n".join(lines)
