"""Downloading a file once into the user cache, checked by its sha256 (pooch).

:func:`fetch` is how :mod:`seqtag.data` gets the UD English EWT files when no data folder holds
them. Every download is checked against its known sha256 and renamed into place only once it
matches: a failed, interrupted or wrong download leaves nothing in the cache. ``SEQTAG_CACHE``
moves the cache, ``SEQTAG_DATA_URL`` the server (tests use a server on 127.0.0.1).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DownloadError", "fetch", "cache_dir", "env_path", "EWT_BASE_URL", "EWT_FOLDER"]

EWT_BASE_URL = "https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/r2.16"
EWT_FOLDER = "ud-english-ewt"


class DownloadError(RuntimeError):
    """A download failed (HTTP error, interrupted or truncated body, checksum mismatch)."""


def env_path(name: str) -> Path | None:
    """The path in environment variable ``name`` (``~`` expanded), or ``None`` if unset or blank."""
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Where downloads go: ``$SEQTAG_CACHE``, else the user cache dir (``~/.cache/seqtag``)."""
    env = env_path("SEQTAG_CACHE")
    if env is not None:
        return env
    import platformdirs

    return Path(platformdirs.user_cache_dir("seqtag"))


def fetch(
    fname: str,
    sha256: str,
    *,
    base_url: str | None = None,
    cache: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``<base_url>/<fname>`` into ``<cache>/ud-english-ewt/`` once, checked by sha256.

    Args:
        fname: the file name (also its name in the cache).
        sha256: the expected hex digest; a cached file with another digest is downloaded again.
        base_url: defaults to ``$SEQTAG_DATA_URL``, else the official r2.16 URL.
        cache: defaults to :func:`cache_dir`.
        timeout: seconds to wait for the server.

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: HTTP error (e.g. 404), interrupted or truncated transfer, checksum
            mismatch. Nothing is left in the cache: pooch downloads to a temporary file and
            renames it only once the checksum matches.
    """
    import pooch
    import requests

    base = (base_url or os.environ.get("SEQTAG_DATA_URL", "").strip() or EWT_BASE_URL).rstrip("/")
    url = f"{base}/{fname}"
    folder = Path(cache) if cache is not None else cache_dir()
    folder = folder / EWT_FOLDER
    hint = f"or put {fname} in a folder and point SEQTAG_DATA at it"
    try:
        path = pooch.retrieve(
            url,
            known_hash=f"sha256:{sha256}",
            fname=fname,
            path=folder,
            downloader=pooch.HTTPDownloader(timeout=timeout, progressbar=False),
        )
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise DownloadError(f"download of {url} failed: HTTP {status}; check the URL, {hint}") from None
    except requests.RequestException as exc:
        raise DownloadError(
            f"download of {url} was interrupted or truncated ({type(exc).__name__}); "
            f"nothing was saved: run again, {hint}"
        ) from None
    except ValueError as exc:  # pooch's checksum mismatch
        raise DownloadError(
            f"checksum mismatch for {url}: the file is not the expected release ({exc}); "
            f"nothing was saved: check SEQTAG_DATA_URL, {hint}"
        ) from None
    return Path(path)
