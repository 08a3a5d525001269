"""Shared test configuration: counts the bad inputs the suite tries (issue: hard inputs)."""

from __future__ import annotations

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
