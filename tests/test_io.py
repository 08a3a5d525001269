"""seqtag.io: writes are whole or absent, never litter, and do not touch the process umask."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
import torch

from seqtag.io import atomic_write, load_json, save_results, write_json, write_text, write_with


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_json_round_trip_and_no_litter(tmp_path: Path) -> None:
    path = write_json(tmp_path / "sub" / "r.json", {"a": [1, 2.5], "é": None})
    assert load_json(path) == {"a": [1, 2.5], "é": None}
    assert path.read_text(encoding="utf-8").endswith("\n")
    assert names(path.parent) == ["r.json"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    path = write_text(tmp_path / "x.txt", "old")
    with pytest.raises(RuntimeError, match="half"), atomic_write(path, "w") as f:
        f.write("new, half written")
        raise RuntimeError("half")
    assert path.read_text() == "old"
    assert names(tmp_path) == ["x.txt"]


def test_unserialisable_json_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json(tmp_path / "r.json", {"f": object()})
    assert names(tmp_path) == []


def test_torch_save_through_write_with(tmp_path: Path) -> None:
    path = write_with(tmp_path / "x.pt", lambda f: torch.save({"a": 1}, f))
    with pytest.raises(Exception, match="pickle|lambda|local object"):
        write_with(path, lambda f: torch.save({"f": lambda: 0}, f))
    assert torch.load(path, weights_only=True) == {"a": 1}
    assert names(tmp_path) == ["x.pt"]


def test_replacing_keeps_the_existing_mode(tmp_path: Path) -> None:
    path = write_text(tmp_path / "private.txt", "a")
    os.chmod(path, 0o600)
    write_text(path, "b")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "b"


def test_the_umask_is_never_changed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Reading the umask means setting it: a race with every other thread. io must not call it."""
    calls: list[int] = []
    monkeypatch.setattr(os, "umask", lambda m: calls.append(m) or 0o022)
    write_json(tmp_path / "a.json", {})
    write_with(tmp_path / "b.pt", lambda f: torch.save({}, f))
    assert calls == []


def test_concurrent_writers_use_unique_temporary_names(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(20):
                write_json(path, {"writer": k, "i": i, "pad": "x" * 5000})
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert load_json(path)["i"] == 19  # always a whole file
    assert names(tmp_path) == ["shared.json"]


def test_bad_mode_and_folder_destination(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode must be 'w'"), atomic_write(tmp_path / "a", "a"):
        pass
    with pytest.raises(IsADirectoryError, match="is a folder"):
        write_text(tmp_path, "x")


def test_load_json_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n "a": 1,\n}\n')
    with pytest.raises(ValueError, match=r"bad\.json:3: not valid JSON"):
        load_json(bad)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_json(tmp_path / "missing.json")


def test_save_results_adds_the_machine_record(tmp_path: Path) -> None:
    path = save_results(tmp_path / "r.json", {"accuracy": 0.5}, schedule="smoke", device="cpu")
    data = json.loads(path.read_text())
    assert data["accuracy"] == 0.5
    assert data["machine"]["schedule"] == "smoke" and data["machine"]["device"] == "cpu"
    assert {"cpu", "cpu_count", "torch", "load_average", "gpu", "date", "schedule"} <= data["machine"].keys()
    unsaid = json.loads(save_results(tmp_path / "u.json", {"a": 1}).read_text())
    assert unsaid["machine"]["schedule"] is None  # the key is there: nobody said how it was run
    with pytest.raises(ValueError, match="already has a 'machine'"):
        save_results(tmp_path / "r.json", {"machine": {}})
