"""Load on purpose: keep CPU cores busy with other processes while the benchmark times.

``python -m seqtag bench --busy 1`` measures what a reader's laptop does with a browser open: one
other process that wants a whole core. :func:`busy_processes` starts ``n`` plain Python processes
that spin (``while True: pass``, nice 0, like any user program), keeps them running for the
block, stops them, and says how much CPU time each really took, so a stored run shows that the
core was busy rather than assuming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["SPIN", "busy_processes"]

SPIN = "while True: pass"  # the busy process: one core's worth of pure Python, no I/O, no memory


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``), else ``None``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


@contextmanager
def busy_processes(n: int) -> Iterator[dict[str, Any]]:
    """Run the block while ``n`` other processes each keep one CPU core busy.

    Args:
        n: spinning processes to start (``0``: none, the record says so).

    Yields:
        A JSON-able record, completed when the block ends: ``{"processes": n, "command", "pids",
        "wall_seconds", "cpu_seconds": [per process, None where unknown], "busy_fraction":
        [cpu / wall per process]}``. A busy fraction near 1 means the process really held a core
        for the whole block; well below 1, the cores were shared with even more work.

    Raises:
        ValueError: ``n`` is negative.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"busy must be an int >= 0 (spinning processes), got {n!r}")
    record: dict[str, Any] = {"processes": n, "command": f"{os.path.basename(sys.executable)} -c '{SPIN}'"}
    procs = [subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]
    record["pids"] = [p.pid for p in procs]
    started = time.perf_counter()
    try:
        yield record
    finally:
        wall = time.perf_counter() - started
        cpu = [_cpu_seconds(p.pid) if p.poll() is None else None for p in procs]
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a spinner ignores SIGTERM
                p.kill()
                p.wait()
        record.update(wall_seconds=wall, cpu_seconds=cpu,
                      busy_fraction=[None if c is None else c / wall for c in cpu])
