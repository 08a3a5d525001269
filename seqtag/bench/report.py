"""From measured rows to answers: speed ratios with the spread of their rounds, the targets, and
the plain-text report ``python -m seqtag bench`` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["RATIO_KEYS", "TARGETS", "EXACT", "LOAD_TOLERANCE", "train_speed", "speed_ratio", "ratio_range",
           "compute_ratios", "other_ratios", "ratio_spreads", "best_exact", "check_targets", "explain",
           "format_report", "compare_runs"]

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
# The batched strategies that give a BiLSTM's exact outputs (per_sentence is exact too: the baseline).
EXACT: tuple[str, ...] = ("random_packed", "bucketed_packed", "bucketed_flipped")
# compare_runs: a ratio measured under load "holds" when it is within this share of the quiet one.
LOAD_TOLERANCE = 0.3
# Targets for the 2-core CPU the book is built on; (key, comparison, bound, what it is).
TARGETS: tuple[tuple[str, str, float, str], ...] = (
    ("best_exact_vs_per_sentence", ">=", 12.0,
     "training speed-up of the fastest exact batched strategy over one sentence per step"),
    ("best_exact_vs_random_padded", ">=", 1.2,
     "training speed-up of the fastest exact batched strategy over random padded batches"),
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


def best_exact(results: Sequence[dict[str, Any]], batch_size: int) -> dict[str, Any] | None:
    """The fastest exact batched strategy at ``batch_size`` and its two ratios.

    Exact: a row whose ``correct`` is true (rows without the flag: the strategies of :data:`EXACT`);
    for a unidirectional RNN the padded strategies are exact too.

    Returns:
        ``{"strategy", "batch_size", "vs_per_sentence", "vs_random_padded", "spread":
        {"vs_per_sentence": range, "vs_random_padded": range}}`` (ratios ``None`` where the
        baseline was not timed; ranges from :func:`ratio_range`), or ``None`` when no exact
        batched strategy was timed at ``batch_size``.
    """
    exact = [r["strategy"] for r in results if r["strategy"] != "per_sentence" and r["batch_size"] == batch_size
             and r.get("correct", r["strategy"] in EXACT)]
    timed = [(speed, s) for s in exact if (speed := train_speed(results, s, batch_size)) is not None]
    if not timed:
        return None
    strategy = max(timed)[1]
    return {
        "strategy": strategy,
        "batch_size": batch_size,
        "vs_per_sentence": speed_ratio(results, strategy, "per_sentence", batch_size),
        "vs_random_padded": speed_ratio(results, strategy, "random_padded", batch_size),
        "spread": {f"vs_{slow}": ratio_range(results, strategy, slow, batch_size)
                   for slow in ("per_sentence", "random_padded")},
    }


def check_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The :data:`TARGETS` against ``report``: ``[{"name", "value", "bound", "op", "met"}, ...]``.

    ``met`` is ``None`` when the value was not measured (a strategy left out).
    """
    values = dict(report["ratios"])
    best = report.get("best_exact") or {}
    values["best_exact_vs_per_sentence"] = best.get("vs_per_sentence")
    values["best_exact_vs_random_padded"] = best.get("vs_random_padded")
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
        if t["name"] == "best_exact_vs_per_sentence":
            lines.append(_explain_best_vs_sentence(report, t["bound"]))
        elif t["name"] == "best_exact_vs_random_padded":
            best, pad = report.get("best_exact") or {}, report["pad_fraction"]
            lines.append(
                f"- {t['name']}: random batches pad {pad['random']:.0%} of positions, bucketed "
                f"{pad['bucketed']:.0%}; {best.get('strategy', 'n/a')} still runs "
                f"{_fmt(best.get('vs_random_padded'))} the random padded speed, so removing padding is "
                "not where its time goes: see the roofline fraction of each row."
            )
        elif t["name"] == "bucketed_packed_vs_per_sentence":
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


def _busy_text(busy: dict[str, Any] | None) -> str:
    if not busy or not busy.get("processes"):
        return "no busy processes started by the benchmark"
    share = [f"{f:.0%}" for f in busy.get("busy_fraction") or [] if f is not None]
    held = f" (each held a core {', '.join(share)} of the time)" if share else ""
    return f"{busy['processes']} busy process(es) ({busy['command']}) ran beside the whole measurement{held}"


def _step_ms(row: dict[str, Any]) -> float:
    """Median milliseconds of one training step of a row (its pass over ``batches`` steps)."""
    seconds = row["tokens"] / row["train_tokens_per_s"]
    return 1e3 * seconds / max(1, row["batches"])


def _explain_best_vs_sentence(report: dict[str, Any], bound: float) -> str:
    """Why the fastest exact strategy stays under ``bound`` x per-sentence, from this run's steps."""
    results, best = report["results"], report.get("best_exact") or {}
    name = "best_exact_vs_per_sentence"
    fast = _row(results, best.get("strategy", ""), best.get("batch_size", 0))
    one = _row(results, "per_sentence", 1)
    if fast is None or one is None:
        return f"- {name}: not measured (per_sentence or every exact batched strategy left out)."
    t1, tb = _step_ms(one), _step_ms(fast)
    per_step = fast["sentences"] / max(1, fast["batches"])
    tokens1 = one["tokens"] / max(1, one["sentences"])
    tokensb = fast["tokens"] / max(1, fast["sentences"])
    ceiling = best["vs_per_sentence"] / fast["roofline_fraction"] if fast.get("roofline_fraction") else None
    return (
        f"- {name}: a step of one sentence (~{tokens1:.0f} tokens) takes {t1:.2f} ms, a step of "
        f"{per_step:.0f} sentences (~{tokensb:.0f} tokens each) with {fast['strategy']} {tb:.2f} ms, "
        f"so per token the batch is {best['vs_per_sentence']:.2f}x faster; {bound:g}x needs that step under "
        f"{t1 * per_step / bound * tokensb / tokens1:.2f} ms. Costs paid once per step whatever its size "
        f"(the optimizer, the embedding gradient, Python and dispatch) slow both alike, so cutting them "
        f"raises tokens/s but lowers this ratio; the batched step already runs at "
        f"{fast['roofline_fraction']:.0%} of its GEMM ceiling, where the ratio would be at most "
        f"{_fmt(ceiling)}."
    )


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
        f"optimizer {report['config'].get('optimizer', 'Adam')}; {_busy_text(report.get('busy'))}",
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
    best = report.get("best_exact")
    if best:
        rng = best.get("spread", {})
        parts = []
        for key in ("vs_per_sentence", "vs_random_padded"):
            r = rng.get(key)
            where = "" if not r else f" ({r['min']:.2f}-{r['max']:.2f})"
            parts.append(f"{_fmt(best[key])}{where} {key.replace('_', ' ')}")
        lines.append(f"  fastest exact strategy at batch {best['batch_size']}: {best['strategy']}, " + ", ".join(parts))
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


def compare_runs(quiet: dict[str, Any], loaded: dict[str, Any], tolerance: float = LOAD_TOLERANCE) -> dict[str, Any]:
    """Each speed ratio of a run under load against the same ratio of a quiet run.

    Args:
        quiet, loaded: two benchmark reports (e.g. ``bench --json`` without and with ``--busy 1``).
        tolerance: a ratio holds when ``|loaded / quiet - 1| <= tolerance``.

    Returns:
        ``{"tolerance", "ratios": {key: {"quiet", "loaded", "change"}}, "held": bool}`` over the
        ratios both runs measured (``ratios``, ``other_ratios`` that are numbers, and the
        fastest exact strategy's two, as ``best_exact_vs_...``); ``change`` is ``loaded / quiet - 1``.

    Raises:
        ValueError: the runs compare nothing in common, or differ in what they timed
            (corpus, model sizes, batch sizes, optimizer or threads).
    """
    same = ("embedding_dim", "hidden_size", "bidirectional", "batch_sizes", "optimizer")
    differ = [k for k in same if quiet["config"].get(k) != loaded["config"].get(k)]
    differ += [k for k in ("corpus", "threads", "ratio_batch_size") if quiet.get(k) != loaded.get(k)]
    if differ:
        raise ValueError(f"the two runs differ in {', '.join(differ)}: compare runs of the same benchmark")

    def flat(run: dict[str, Any]) -> dict[str, float]:
        values = {k: v for k, v in {**run["ratios"], **run.get("other_ratios", {})}.items()
                  if isinstance(v, int | float)}
        best = run.get("best_exact") or {}
        for key in ("vs_per_sentence", "vs_random_padded"):
            if best.get(key) is not None:
                values[f"best_exact_{key}"] = best[key]
        return values

    a, b = flat(quiet), flat(loaded)
    keys = [k for k in a if k in b]
    if not keys:
        raise ValueError("the two runs have no speed ratio in common")
    ratios = {k: {"quiet": a[k], "loaded": b[k], "change": b[k] / a[k] - 1} for k in keys}
    return {"tolerance": tolerance, "ratios": ratios,
            "held": all(abs(r["change"]) <= tolerance for r in ratios.values())}
