"""Every chapter's Colab install cell, derived from the chapter itself and from _config.yml.

    python tools/sync_install_cells.py                  # rewrite install cells and hide tags
    python tools/sync_install_cells.py --check          # exit 1 and name what differs
    python tools/sync_install_cells.py --set-url URL    # a fork: set _config.yml's URL, then rewrite

What is derived, per chapter:
- the extras its install cell installs (`seqtag[glove,search]`): the optional packages (from
  pyproject.toml's extras, less what Colab preinstalls: requirements-colab.txt) that the chapter
  imports directly, or through a seqtag module that imports them, or asks for by name (GloVe vectors
  are chosen by a string such as "glove50", and the "best" preset uses them);
- the repository URL (`_config.yml`'s `repository.url`, the one place it is written by hand); the
  cell reads SEQTAG_INSTALL_URL first, so `make colab-check` installs this checkout instead;
- the tags that collapse the install cell (`hide-cell`) and the parameters cell (`hide-input`) in the
  HTML, so a page opens on its story.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import sys
import tokenize
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "_config.yml"
COLAB_REQUIREMENTS = ROOT / "requirements-colab.txt"
NOT_CHAPTER_EXTRAS = {"book", "test", "all", "dev", "lint"}
# Import names that differ from the distribution's name.
IMPORT_NAMES = {"pytorch-crf": "torchcrf"}
# Extras a chapter asks for by value rather than by import (matched in code, comments removed): GloVe
# vectors by source name ("glove50") or loader, and the "best" preset, which starts from them.
BY_VALUE = {
    "glove": re.compile(
        r"\bglove\d+d?\b|\bload_glove\b|preset\w*\s*[=(]\s*[\"']best[\"']|[\"']--preset[\"'],\s*[\"']best[\"']"
    ),
}
INSTALL_TAG = "hide-cell"
PARAMETERS_TAG = "hide-input"
HIDE_TAGS = {"hide-cell", "hide-input", "hide-output", "remove-cell", "remove-input"}
INSTALL_TEMPLATE = '''\
# Install cell: in Colab, install this book's package; elsewhere this does nothing.
import os
import subprocess
import sys

REPO_URL = "{url}"
EXTRAS = "{extras}"  # optional packages this chapter uses (kept in sync by tools/sync_install_cells.py)
if "google.colab" in sys.modules:
    source = os.environ.get("SEQTAG_INSTALL_URL", f"git+{{REPO_URL}}")  # make colab-check: this checkout
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"seqtag{{EXTRAS}} @ {{source}}"], check=True)'''


def repo_url() -> str:
    """`repository.url` of _config.yml, without a trailing slash."""
    return str(yaml.safe_load(CONFIG.read_text())["repository"]["url"]).rstrip("/")


def set_repo_url(url: str) -> None:
    """Rewrite _config.yml's `repository.url` line (comments and layout kept)."""
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url.rstrip("/")):
        raise SystemExit(f"--set-url wants https://github.com/OWNER/REPO, got {url!r}")
    text = CONFIG.read_text()
    new, n = re.subn(r"(?m)^(repository:\n(?:[ \t]+.*\n)*?[ \t]+url:[ \t]*).*$", rf"\g<1>{url.rstrip('/')}", text)
    if n != 1:
        raise SystemExit(f"{CONFIG}: no 'repository: url:' line to rewrite")
    CONFIG.write_text(new)


def _dist_to_import(requirement: str) -> str:
    dist = re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower()
    return IMPORT_NAMES.get(dist, dist.replace("-", "_"))


def colab_preinstalled() -> set[str]:
    """Import names of the packages requirements-colab.txt lists (what Colab ships)."""
    if not COLAB_REQUIREMENTS.exists():
        return set()
    lines = [ln.split("#")[0].strip() for ln in COLAB_REQUIREMENTS.read_text().splitlines()]
    return {_dist_to_import(ln) for ln in lines if ln and not ln.startswith("-")}


def optional_modules() -> dict[str, str]:
    """Import name -> extra, for every package of a chapter extra that Colab does not preinstall."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    colab = colab_preinstalled()
    out = {}
    for extra, reqs in extras.items():
        if extra in NOT_CHAPTER_EXTRAS:
            continue
        for req in reqs:
            name = _dist_to_import(req)
            if name not in colab and name != "seqtag":
                out[name] = extra
    return out


def _imports(tree: ast.AST) -> set[str]:
    """Dotted names imported anywhere in `tree` ('from a.b import c' gives 'a.b' and 'a.b.c')."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def seqtag_module_extras() -> dict[str, set[str]]:
    """seqtag module name -> extras its source imports (lazily or not)."""
    optional = optional_modules()
    out = {}
    for path in (ROOT / "seqtag").rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except SyntaxError:
            continue
        needs = {optional[n.split(".")[0]] for n in _imports(tree) if n.split(".")[0] in optional}
        if needs:
            out[name] = needs
    return out


def _code_without_comments(src: str) -> str:
    """Source with comments removed (IPython magics and shell lines are dropped first)."""
    src = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines())
    try:
        toks = [t for t in tokenize.generate_tokens(io.StringIO(src).readline) if t.type != tokenize.COMMENT]
        return tokenize.untokenize(toks)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return re.sub(r"(?m)#.*$", "", src)


def chapter_extras(nb: dict, module_extras: dict[str, set[str]] | None = None) -> list[str]:
    """The extras a chapter needs (sorted), from the code cells after its install cell."""
    module_extras = seqtag_module_extras() if module_extras is None else module_extras
    optional = optional_modules()
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    needs: set[str] = set()
    for cell in code[1:]:
        src = _code_without_comments("".join(cell["source"]))
        try:
            names = _imports(ast.parse(src))
        except SyntaxError:
            names = set(re.findall(r"(?m)^\s*(?:import|from)\s+([\w.]+)", src))
        for name in names:
            if name.split(".")[0] in optional:
                needs.add(optional[name.split(".")[0]])
            needs.update(module_extras.get(name, set()))
        needs.update(extra for extra, pattern in BY_VALUE.items() if pattern.search(src))
    return sorted(needs)


def install_source(url: str, extras: list[str]) -> str:
    """The canonical install cell for a chapter needing `extras`."""
    return INSTALL_TEMPLATE.format(url=url, extras=f"[{','.join(extras)}]" if extras else "")


def _set_tag(cell: dict, tag: str) -> bool:
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    want = [t for t in tags if t not in HIDE_TAGS or t == tag]
    if tag not in want:
        want.append(tag)
    if want != tags:
        cell["metadata"]["tags"] = want
        return True
    return False


def sync_notebook(nb: dict, url: str, module_extras: dict[str, set[str]] | None = None) -> list[str]:
    """Bring `nb`'s install and parameters cells in line (in place); what differed, one line each."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if not code or "google.colab" not in "".join(code[0]["source"]):
        return ["the first code cell is not the install cell (it must test for google.colab)"]
    out = []
    extras = chapter_extras(nb, module_extras)
    want = install_source(url, extras)
    have = "".join(code[0]["source"])
    if have != want:
        m = re.search(r'(?m)^EXTRAS = "(.*?)"|seqtag(\[[\w,]*\])? @', have)
        had = (m.group(1) or m.group(2) or "") if m else "?"
        if had != (f"[{','.join(extras)}]" if extras else ""):
            out.append(f"install cell installs seqtag{had or ''} but the chapter needs seqtag[{','.join(extras)}]")
        if f'REPO_URL = "{url}"' not in have:
            out.append(f"install cell's REPO_URL differs from _config.yml ({url})")
        if not out:
            out.append("install cell differs from the canonical one (tools/sync_install_cells.py)")
        code[0]["source"] = want.splitlines(keepends=True)
    if _set_tag(code[0], INSTALL_TAG):
        out.append(f"install cell is not tagged {INSTALL_TAG!r} (collapsed in the HTML)")
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    if params and _set_tag(params[0], PARAMETERS_TAG):
        out.append(f"parameters cell is not tagged {PARAMETERS_TAG!r} (collapsed in the HTML)")
    return out


def problems(fix: bool = False, folder: Path | None = None) -> list[str]:
    """What differs in every chapter of `folder` (book/ by default); with fix, rewrite them."""
    url = repo_url()
    module_extras = seqtag_module_extras()
    out = []
    for path in sorted((folder or ROOT / "book").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        found = sync_notebook(nb, url, module_extras)
        out += [f"{path.name}: {line}" for line in found]
        if fix and found:
            import nbformat

            path.write_text(nbformat.writes(nbformat.from_dict(nb)) + "\n", encoding="utf-8")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 when a chapter differs")
    ap.add_argument("--set-url", metavar="URL", help="set _config.yml's repository URL first (a fork)")
    ap.add_argument("--book", type=Path, help="folder of chapters (default: book/)")
    args = ap.parse_args()
    if args.set_url:
        set_repo_url(args.set_url)
        print(f"_config.yml: repository.url = {repo_url()}")
    found = problems(fix=not args.check, folder=args.book)
    for line in found:
        print(line)
    if args.check and found:
        print("fix: python tools/sync_install_cells.py (then commit the chapters)", file=sys.stderr)
        return 1
    if not args.check:
        print(f"install cells: {len(found)} change(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
