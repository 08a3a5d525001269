"""Files written whole or not at all: one atomic-write helper, JSON and results files.

Every writer in :mod:`seqtag` goes through :func:`atomic_write`: the bytes go to a temporary file
with a unique name in the destination's folder, are flushed to disk (``fsync``), then
:func:`os.replace` swaps it in. A reader sees the old file or the new one, never half of one;
a failure (a full disk, an exception while serialising, Ctrl-C) removes the temporary file and
leaves the old file as it was. Two writers never share a temporary name.

:func:`save_results` is how an experiment stores what it measured: the payload plus a
``machine`` record (:func:`seqtag.runtime.machine`: CPU model and cores, GPU, torch, load).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "write_bytes",
    "write_text",
    "write_with",
    "write_json",
    "load_json",
    "save_results",
    "check_known_fields",
]


def _new_file_mode(path: Path) -> int:
    """The mode the replaced file had, else ``0o644`` (an ordinary readable file).

    ``tempfile.mkstemp`` creates ``0o600`` files. The umask is not read because reading it means
    setting it (``os.umask``), which changes it for every other thread of the process meanwhile.
    """
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o644


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing; on success it replaces ``path``.

    Args:
        path: the destination; missing parent folders are created.
        mode: ``"wb"`` (bytes) or ``"w"`` (text, ``encoding`` defaults to UTF-8).

    Yields:
        The open temporary file. If the block raises, the temporary file is removed, ``path`` is
        untouched, and the exception propagates.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_write(folder / "a.txt", "w") as f:
    ...     _ = f.write("whole")
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('whole', ['a.txt'])
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' (text) or 'wb' (bytes), got {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; give a file name to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        kwargs = {"encoding": encoding or "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path`` as a :class:`~pathlib.Path`."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)


def write_with(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``writer(binary_file)`` on a temporary file, then move it to ``path`` (e.g. ``torch.save``)."""
    with atomic_write(path, "wb") as f:
        writer(f)
    return Path(path)


def write_json(path: str | os.PathLike[str], payload: Any, indent: int | None = 1) -> Path:
    """Write ``payload`` as JSON (UTF-8, a final newline) atomically.

    The payload is serialised before the file is opened: a value JSON cannot hold raises
    ``TypeError`` and leaves no file (nor temporary file) behind.
    """
    text = json.dumps(payload, indent=indent, ensure_ascii=False, allow_nan=True) + "\n"
    return write_text(path, text)


def load_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file; a broken one raises ``ValueError`` naming the file and the line."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); write it again") from None


def save_results(
    path: str | os.PathLike[str], payload: dict[str, Any], *, schedule: str | None = None, device: Any = None
) -> Path:
    """Write an experiment's results as JSON with the ``machine`` it ran on, atomically.

    Args:
        path: the JSON file (its folder is created).
        payload: the measurements (a dict of JSON-able values; it must not have a ``machine`` key).
        schedule: how the run was scheduled (``"full"``, ``"smoke"``, ``"nice -n 5, 1 thread"``...),
            stored as ``machine["schedule"]``; always pass it (``null`` in the file says nobody did).
        device: the device the run used (see :func:`seqtag.runtime.machine`).
    """
    from seqtag.runtime import machine

    if not isinstance(payload, dict):
        raise TypeError(f"payload must be a dict, got {type(payload).__name__}")
    if "machine" in payload:
        raise ValueError("payload already has a 'machine' entry: save_results adds it; remove it from the payload")
    record = machine(device)
    record["schedule"] = schedule
    return write_json(path, {**payload, "machine": record})


def check_known_fields(cls: type, data: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the keys of ``data`` (read from a file: a checkpoint, a JSON
    config) that are not fields of dataclass ``cls``, and listing the known ones.

    Every configuration's ``from_dict`` calls this, so a file from another version of the code is
    one clear error instead of ``TypeError: __init__() got an unexpected keyword argument``.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} must be read from a dict, got {type(data).__name__}")
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} fields {unknown} (a file from another version of seqtag?); "
            f"known fields: {known}"
        )
