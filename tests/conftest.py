"""Shared test configuration: counts the bad inputs the suite tries (issue: hard inputs)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import pytest
import torch

# The tests use tiny models: one thread is as fast, and it cannot stall when another process holds
# the second core (OpenMP threads spin-wait; two threads on a busy 2-core machine ran 10x slower).
torch.set_num_threads(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bad_input: a test that feeds one kind of bad input")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    passed = failed = 0
    for key in ("passed", "failed"):
        for report in terminalreporter.stats.get(key, []):
            if report.when == "call" and "bad_input" in report.keywords:
                passed += key == "passed"
                failed += key == "failed"
    if passed or failed:
        terminalreporter.write_line(
            f"bad inputs covered: {passed + failed} ({passed} handled with a clear error, {failed} not)"
        )


#: Tensor methods that read a value back to Python (on a GPU each one waits for the device).
HOST_READS = ("item", "tolist", "cpu", "numpy", "__int__", "__float__", "__bool__", "__index__")


@pytest.fixture
def host_reads(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """``watch(where, names)``: record each call of the Tensor methods ``names`` made from a file
    whose path contains ``where``; returns the (live) list of the method names called."""

    def watch(where: str, names: Sequence[str] = HOST_READS) -> list[str]:
        calls: list[str] = []
        for name in names:
            original = getattr(torch.Tensor, name)

            def counted(self, *args, _name=name, _original=original, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
                if where in sys._getframe(1).f_code.co_filename:
                    calls.append(_name)
                return _original(self, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)
        return calls

    return watch
