"""The ablation's results: one :class:`Run` per trained model, the table over seeds, the files.

:mod:`seqtag.experiments.ablation` trains the runs; this module turns them into what the book
shows and stores: :func:`aggregate` (mean and spread over seeds per variant), :func:`runs_of_seeds`
(every variant compared on the same seeds), :func:`schedule_table` (what each variant actually
ran), and the JSON files (:func:`results_payload`, :func:`save_results`, :func:`load_results`),
which record the machine they were measured on (:func:`seqtag.runtime.machine`).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from seqtag.io import load_json, write_json
from seqtag.runtime import machine

__all__ = [
    "Run",
    "Job",
    "aggregate",
    "runs_of_seeds",
    "schedule_table",
    "results_payload",
    "save_results",
    "load_results",
    "previous_runs",
]

#: One training job: ``(variant, options, tagset, seed)``.
Job = tuple[str, dict[str, Any], str, int]


@dataclass
class Run:
    """One trained model's scores (a row of the results)."""

    variant: str
    tagset: str
    seed: int
    dev_accuracy: float
    test_accuracy: float
    test_oov_accuracy: float
    test_oov_rate: float
    parameters: int
    seconds_per_epoch: float
    epochs: int
    best_epoch: int
    load_average: float | None = None  # 1-minute load of the machine when the run ended


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(runs: Sequence[Run | dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per variant: mean and standard deviation over seeds of each score, per tag set.

    Keys: ``variant``, ``seeds``, ``parameters`` (UPOS model), ``seconds_per_epoch`` (mean over
    all its runs) and, for each tag set ``t`` and score ``s`` (``dev``, ``test``, ``test_oov``),
    ``{t}_{s}`` (mean) and ``{t}_{s}_std``.
    """
    rows = [asdict(r) if isinstance(r, Run) else dict(r) for r in runs]
    order = list(dict.fromkeys(r["variant"] for r in rows))
    table = []
    for name in order:
        mine = [r for r in rows if r["variant"] == name]
        row: dict[str, Any] = {"variant": name, "seeds": len({r["seed"] for r in mine})}
        for tagset in dict.fromkeys(r["tagset"] for r in mine):
            these = [r for r in mine if r["tagset"] == tagset]
            for score, key in (("dev", "dev_accuracy"), ("test", "test_accuracy"),
                               ("test_oov", "test_oov_accuracy")):
                row[f"{tagset}_{score}"], row[f"{tagset}_{score}_std"] = _mean_std([r[key] for r in these])
        row["parameters"] = mine[0]["parameters"]
        row["seconds_per_epoch"] = statistics.fmean(r["seconds_per_epoch"] for r in mine)
        table.append(row)
    return table


def save_results(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` (:func:`results_payload`) as indented JSON, atomically, creating the folder."""
    return write_json(path, payload)


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a results file written by :func:`save_results` (``runs``, ``table``, ``command``...)."""
    data = load_json(path)
    if not isinstance(data, dict) or "command" not in data:
        raise ValueError(f"{path}: not a seqtag.experiments.ablation results file (no 'command' entry)")
    return data


def runs_of_seeds(runs: Sequence[Run | dict[str, Any]], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """The runs trained with one of ``seeds``: :func:`aggregate` them to compare every variant on
    the same seeds (a variant without a run for each of ``seeds`` is left out)."""
    rows = [asdict(r) if isinstance(r, Run) else dict(r) for r in runs]
    wanted = set(seeds)
    complete = {v for v in dict.fromkeys(r["variant"] for r in rows)
                if wanted <= {r["seed"] for r in rows if r["variant"] == v}}
    return [r for r in rows if r["seed"] in wanted and r["variant"] in complete]


def schedule_table(results: dict[str, Any]) -> list[dict[str, Any]]:
    """What each variant of a results file actually ran: one row per variant.

    Keys: ``variant``, ``seeds`` (the seeds run), ``tagsets``, ``runs``, ``max_epochs`` and
    ``patience`` (its options), ``epochs_run`` (per run, in file order) and ``best_epochs``.
    """
    options = results.get("variants", {})
    rows = []
    for name in dict.fromkeys(r["variant"] for r in results["runs"]):
        mine = [r for r in results["runs"] if r["variant"] == name]
        rows.append({
            "variant": name,
            "seeds": sorted({r["seed"] for r in mine}),
            "tagsets": list(dict.fromkeys(r["tagset"] for r in mine)),
            "runs": len(mine),
            "max_epochs": options.get(name, {}).get("epochs"),
            "patience": options.get(name, {}).get("patience"),
            "epochs_run": [r["epochs"] for r in mine],
            "best_epochs": [r["best_epoch"] for r in mine],
        })
    return rows


def previous_runs(path: Path, jobs: Sequence[Job]) -> tuple[list[Run], dict[str, dict[str, Any]], float]:
    """The runs of ``path`` that are still valid for ``jobs``, their variants' options, and minutes.

    A run is kept unless ``jobs`` trains its variant with other options (then all of that
    variant's runs are stale). Runs of variants that ``jobs`` does not mention are kept as they are.
    """
    if not path.is_file():
        return [], {}, 0.0
    old = load_results(path)
    old_options: dict[str, dict[str, Any]] = old.get("variants", {})
    new_options = {name: opts for name, opts, _, _ in jobs}
    keep = [Run(**r) for r in old.get("runs", [])
            if r["variant"] not in new_options or old_options.get(r["variant"]) == new_options[r["variant"]]]
    options = {v: old_options[v] for v in dict.fromkeys(r.variant for r in keep) if v in old_options}
    return keep, options, float(old.get("minutes", 0.0))


def results_payload(command: str, schedule: Any, options: dict[str, dict[str, Any]],
                    runs: Sequence[Run], seconds: float) -> dict[str, Any]:
    """What ``--json`` writes: command, the machine (:func:`seqtag.runtime.machine`), schedule,
    options, runs and the table."""
    return {
        "command": command,
        "machine": machine(),
        "schedule": asdict(schedule),  # a seqtag.experiments.ablation.Schedule
        "variants": options,
        "minutes": seconds / 60,
        "runs": [asdict(r) for r in runs],
        "table": aggregate(runs),
    }
