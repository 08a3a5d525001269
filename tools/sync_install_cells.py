"""Keep every chapter's Colab install cell pointing at the repository named in _config.yml.

    python tools/sync_install_cells.py          # rewrite the REPO_URL line of each chapter
    python tools/sync_install_cells.py --check  # exit 1 and name the chapters that differ
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r'^REPO_URL = "[^"]*"', re.M)


def repo_url() -> str:
    return str(yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]).rstrip("/")


def install_cell_index(cells: list[dict]) -> int | None:
    """Index of the install cell: the first code cell, which must set REPO_URL."""
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            return i if LINE.search("".join(cell["source"])) else None
    return None


def problems(fix: bool = False) -> list[str]:
    url = repo_url()
    out = []
    for nb_path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        i = install_cell_index(nb["cells"])
        if i is None:
            out.append(f"{nb_path.name}: first code cell is not the install cell (no REPO_URL line)")
            continue
        src = "".join(nb["cells"][i]["source"])
        want = LINE.sub(f'REPO_URL = "{url}"', src)
        if want != src:
            out.append(f"{nb_path.name}: REPO_URL differs from _config.yml ({url})")
            if fix:
                nb["cells"][i]["source"] = want.splitlines(keepends=True)
                nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return out


if __name__ == "__main__":
    check = "--check" in sys.argv
    found = problems(fix=not check)
    for line in found:
        print(line)
    sys.exit(1 if check and found else 0)
