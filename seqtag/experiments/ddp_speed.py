"""Data-parallel training speed on this machine's CPUs, over whole epochs (the book's chapter 11).

Three ways to train the same BiLSTM on the same sentences for the same number of optimizer steps,
each launched as a reader would launch it (``python -m seqtag.distributed``, under ``torchrun``
for several processes):

- ``1x1``: one process, one thread, 32 sentences per step;
- ``1x2``: one process, two threads (PyTorch's intra-op parallelism), 32 sentences per step;
- ``2x1``: two processes (gloo), one thread each, 16 sentences per process and step.

Each configuration runs ``repeats`` times, the order reversed on every other round so that a
change of the machine's load does not favour one configuration; the load average before and
after every run is stored with it. Speed is training tokens per second over the training steps
(``train_seconds`` of :func:`seqtag.distributed.run`: no start-up, no evaluation).

Run::

    SEQTAG_DATA=/path/to/ewt python -m seqtag.experiments.ddp_speed --full --json book/results/ddp_speed.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from seqtag.experiments.common import load_average, log, parse_args, read_results, write_results

__all__ = ["Schedule", "QUICK", "FULL", "CONFIGS", "command", "launch", "run", "summary", "main"]

# name -> (processes, threads per process, sentences per process and step)
CONFIGS: dict[str, tuple[int, int, int]] = {"1x1": (1, 1, 32), "1x2": (1, 2, 32), "2x1": (2, 1, 16)}


@dataclass(frozen=True)
class Schedule:
    """``train_size``/``dev_size``: sentences (0: the whole split); ``epochs`` per run; ``repeats`` rounds."""

    name: str
    train_size: int
    dev_size: int
    epochs: int = 1
    repeats: int = 1
    seed: int = 0
    timeout_s: int = 3600

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Smoke run: a few hundred sentences; start-up dominates, nothing can be concluded from it.
QUICK = Schedule("quick", train_size=300, dev_size=100, epochs=1, repeats=1, timeout_s=300)
# One full epoch of EWT train (12,544 sentences) per run, every configuration twice.
FULL = Schedule("full", train_size=0, dev_size=0, epochs=1, repeats=2)


def command(processes: int, threads: int, batch_size: int, schedule: Schedule,
            data_dir: str | os.PathLike[str] | None = None,
            model_out: str | os.PathLike[str] | None = None) -> list[str]:
    """The command line of one run (``torchrun``'s module form when ``processes > 1``);
    ``model_out``: where rank 0 saves the trained tagger (``seqtag.tagger`` checkpoint)."""
    args = ["--train-size", str(schedule.train_size), "--dev-size", str(schedule.dev_size),
            "--epochs", str(schedule.epochs), "--seed", str(schedule.seed), "--device", "cpu",
            "--threads", str(threads), "--batch-size", str(batch_size), "--json"]
    if data_dir:
        args += ["--data-dir", str(data_dir)]
    if model_out:
        args += ["--out", str(model_out)]
    if processes == 1:
        return [sys.executable, "-m", "seqtag.distributed", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
            "-m", "seqtag.distributed", *args]


def launch(name: str, schedule: Schedule, data_dir: str | os.PathLike[str] | None = None,
           model_out: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Run configuration ``name`` once; return rank 0's log with its speed, wall time and load."""
    processes, threads, batch_size = CONFIGS[name]
    cmd = command(processes, threads, batch_size, schedule, data_dir, model_out)
    # PASSIVE: a thread waiting for its partner sleeps instead of spinning on a shared core.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
    load_before = load_average()
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=schedule.timeout_s)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    tokens = result["train_tokens_per_epoch"] * result["epoch"]
    return {
        "config": name,
        "processes": processes,
        "threads": threads,
        "batch_size_per_process": batch_size,
        **result,
        "tokens_per_second": tokens / result["train_seconds"],
        "seconds_per_epoch": result["train_seconds"] / result["epoch"],
        "wall_seconds": wall,
        "load_before": load_before,
        "load_after": load_average(),
    }


def summary(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per configuration: the median tokens/s and seconds per epoch over its runs, and the speed-up
    of that median over the median of ``1x1`` (``runs`` keyed ``"<config>#<round>"``)."""
    by_config: dict[str, list[dict[str, Any]]] = {}
    for r in runs.values():
        by_config.setdefault(r["config"], []).append(r)

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    out = {name: {"runs": len(rs), "tokens_per_second": median([r["tokens_per_second"] for r in rs]),
                  "seconds_per_epoch": median([r["seconds_per_epoch"] for r in rs])}
           for name, rs in by_config.items()}
    if "1x1" in out:
        for stats in out.values():
            stats["speedup_over_1x1"] = stats["tokens_per_second"] / out["1x1"]["tokens_per_second"]
    return out


def run(schedule: Schedule, out: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        model_out: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Every configuration, ``schedule.repeats`` times; the file ``out`` is rewritten after each run.

    ``model_out``: the first run with several processes also saves its trained tagger there.
    """
    runs: dict[str, Any] = read_results(out, schedule.to_dict())
    names = list(CONFIGS)
    for round_ in range(schedule.repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            key = f"{name}#{round_ + 1}"
            if key in runs:
                log(f"{key}: stored, skipped")
                continue
            log(f"{key}: launching")
            save = model_out if CONFIGS[name][0] > 1 and key.endswith("#1") else None
            runs[key] = launch(name, schedule, data_dir, save)
            log(f"{key}: {runs[key]['tokens_per_second']:,.0f} tokens/s, {runs[key]['seconds_per_epoch']:.1f} s/epoch")
            if out is not None:
                write_results(out, {"experiment": "ddp_speed", "schedule": schedule.to_dict(), "runs": runs,
                                    "summary": summary(runs)}, schedule.name)
    return {"experiment": "ddp_speed", "schedule": schedule.to_dict(), "runs": runs, "summary": summary(runs)}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("python -m seqtag.experiments.ddp_speed",
                      "1 process against 2 data-parallel processes (gloo) on this machine's CPUs.", argv)
    result = run(FULL if args.full else QUICK, args.json, args.data or os.environ.get("SEQTAG_DATA"))
    for name, s in result["summary"].items():
        print(f"{name}: {s['tokens_per_second']:8,.0f} tokens/s | {s['seconds_per_epoch']:6.1f} s/epoch | "
              f"speed-up over 1x1 {s.get('speedup_over_1x1', float('nan')):.2f} ({s['runs']} run(s))")
    if args.json:
        print(f"written: {Path(args.json)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
