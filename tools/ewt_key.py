"""Print a cache key for the EWT files: their sha256 digests as seqtag/data.py lists them (no imports).

    make -s ewt-key      # e.g. ewt-3fb78e2b5548-531a54ff90d6-e266e515a0a7 (the GitHub workflows' cache key)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "seqtag" / "data.py"


def digests() -> dict[str, str]:
    """EWT_SHA256 from seqtag/data.py, read as a literal."""
    for node in ast.walk(ast.parse(DATA.read_text(encoding="utf-8"))):
        target = getattr(node, "target", None) or (getattr(node, "targets", [None]) or [None])[0]
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and getattr(target, "id", None) == "EWT_SHA256":
            return ast.literal_eval(node.value)
    raise SystemExit(f"{DATA}: no EWT_SHA256 literal")


if __name__ == "__main__":
    d = digests()
    print("ewt-" + "-".join(d[k][:12] for k in sorted(d)))
    sys.exit(0)
