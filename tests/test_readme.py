"""The README against the files it reports: results, machines, commands, the repository URL."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import readme_results  # noqa: E402

README = (ROOT / "README.md").read_text(encoding="utf-8")
FILES = readme_results.load_all()
MEASURED = sorted(n for n in FILES if n not in readme_results.NOT_MEASURED)


def test_readme_generated_parts_match_the_results_files():
    stale = readme_results.check()
    assert stale == [], "README.md disagrees with book/results/*.json; run `make readme`:\n" + "\n".join(stale[:30])


def test_the_check_fails_when_a_number_is_edited_by_hand():
    m = re.search(r"\*\*(\d+\.\d\d) %\*\*", README)
    assert m, "the accuracy table is missing from the README"
    edited = README.replace(m.group(0), f"**{float(m.group(1)) + 1:.2f} %**", 1)
    assert readme_results.check(text=edited, files=FILES) != []


def test_the_check_fails_when_a_results_file_changes():
    files = copy.deepcopy(FILES)
    name = next(n for n in ("ewt_upos", "bench_cpu", "best") if n in files)
    if name == "ewt_upos":
        files[name]["test"]["accuracy"] -= 0.01
    elif name == "bench_cpu":
        files[name]["ratios"]["bucketed_packed_vs_random_padded"] += 1
    else:
        files[name]["summary"]["upos"]["test"]["mean"] -= 0.01
    assert readme_results.check(text=README, files=files) != []


def test_the_best_preset_rows_follow_best_json():
    """The best preset's rows come from best.json (mean, each seed, targets) and best_ablation.json;
    its per-seed files give no row of their own."""
    if "best" not in FILES:
        pytest.skip("no best.json stored")
    best = FILES["best"]
    mean = best["summary"]["upos"]["test"]["mean"]
    assert f"**{readme_results.pct(mean)}**" in README
    for seed in best["seeds"]:
        assert readme_results.pct(seed["upos"]["test"]) in README
    assert not any(f"`{n}.json` |" in README for n in FILES if n.startswith("best_seed"))
    files = copy.deepcopy(FILES)
    files["best"]["targets"][0]["met"] = not files["best"]["targets"][0]["met"]
    assert readme_results.check(text=README, files=files) != []
    if "best_ablation" in FILES:
        files = copy.deepcopy(FILES)
        files["best_ablation"]["rows"][-1]["what"] += " (edited)"
        assert readme_results.check(text=README, files=files) != []


def test_the_replication_and_joint_decoding_lines_follow_their_files():
    """best.json's replication (the seeds on another machine, when it has one) and joint_decoding.json have their lines."""
    if "best" not in FILES or "joint_decoding" not in FILES:
        pytest.skip("no best.json or joint_decoding.json stored")
    for r in FILES["joint_decoding"]["checkpoints"]:
        assert f"{r['independent']['unseen_pairs']['test']} -> {r['joint']['unseen_pairs']['test']} words" in README
    rep = FILES["best"].get("replication") or copy.deepcopy(FILES["best"])  # the lines of one, from the seeds' numbers
    rep = {**rep, "cpus": ["A Replication CPU"]} if "cpus" not in rep else rep
    files = copy.deepcopy(FILES)
    files["best"]["replication"] = rep
    text = "\n".join(readme_results.best_rows(files))
    assert f"XPOS {readme_results.pct(rep['summary']['xpos']['test']['mean'])}" in text and rep["cpus"][0] in text
    if FILES["best"].get("replication"):
        assert rep["cpus"][0] in README
        files["best"]["replication"]["targets"][0]["met"] = not rep["targets"][0]["met"]
        assert readme_results.check(text=README, files=files) != []
    # the line says whose checkpoints it decoded: the preset's seeds, or the runs of an ablation row
    runs = {r["run"] for r in FILES["joint_decoding"]["checkpoints"]}
    line = "\n".join(readme_results.joint_decoding_rows(FILES))
    rows = [r for r in (FILES.get("best_ablation") or {}).get("rows") or [] if runs <= {f.rsplit("/", 1)[-1] for f in r.get("files") or []}]
    assert (f"on the runs of the ablation's `{rows[0]['name']}` row" if rows else "on the preset's seeds") in line
    files = copy.deepcopy(FILES)
    for seed, run in zip(files["best"]["seeds"], sorted(runs), strict=True):
        seed["file"] = run
    assert "on the preset's seeds" in "\n".join(readme_results.joint_decoding_rows(files))
    files = copy.deepcopy(FILES)
    files["joint_decoding"]["mean_gain"]["xpos"]["test"]["mean"] += 0.01
    assert readme_results.check(text=README, files=files) != []


def test_a_target_missed_by_less_than_the_rounding_shows_a_third_decimal():
    if "best" not in FILES:
        pytest.skip("no best.json stored")
    files = copy.deepcopy(FILES)
    target = next(t for t in files["best"]["targets"] if t["name"] == "xpos_test_mean")
    for mean, met, shown in ((0.95598, False, "**95.598 %**"), (0.9551, False, "**95.51 %**"), (0.95603, True, "**95.60 %**")):
        files["best"]["summary"]["xpos"]["test"]["mean"] = mean
        target.update(bound=0.956, value=mean, met=met)
        assert shown in "\n".join(readme_results.best_rows(files))


def test_the_load_line_compares_a_busy_run_with_the_quiet_one():
    """`bench --busy N` runs are set against the quiet run of the same benchmark, from the files."""
    busy = [n for n, d in FILES.items() if n.startswith("bench_") and (d.get("busy") or {}).get("processes")]
    if not busy:
        pytest.skip("no benchmark under load stored")
    lines = readme_results.load_lines(FILES)
    assert lines and all(line in README for line in lines)
    files = copy.deepcopy(FILES)
    files[busy[0]]["best_exact"]["vs_per_sentence"] *= 2  # a busy run twice as fast: no longer "held"
    assert any("**no**" in line for line in readme_results.load_lines(files))
    assert readme_results.check(text=README, files=files) != []


def test_every_machine_is_described_as_its_file_records_it():
    d = {"machine": {"cpu": "Some CPU", "cpu_count": 16, "gpu": "Some GPU", "torch": "2.11.0",
                     "load_average": [0.25, 0.1, 0.0], "schedule": "quick", "torch_threads": 2}}
    line = readme_results.describe_machine(d)
    for part in ("Some CPU, 16 CPUs", "GPU Some GPU", "torch 2.11.0", "load 0.2", "schedule: quick"):
        assert part in line, (part, line)
    assert "GPU not recorded" in readme_results.describe_machine({})
    # the README's line for each file is exactly that description
    for name in MEASURED:
        assert f"- `{name}.json`: {readme_results.describe_machine(FILES[name])}" in README, name


@pytest.mark.parametrize("name", MEASURED)
def test_every_results_file_records_its_machine(name):
    """Each measured results file has `machine` with CPU model and cores, GPU, torch, load, schedule
    (seqtag.io.save_results writes it). Files written before it existed are regenerated by their owners."""
    missing = readme_results.missing_machine_keys(FILES[name])
    assert missing == [], f"book/results/{name}.json: machine record lacks {missing}"


def test_readme_opens_with_the_two_commands_and_the_fork_command():
    head = "\n".join(README.splitlines()[:20])
    assert "make book" in head and "make test" in head
    assert "make repo-url URL=" in head
    for target in ("book", "test", "repo-url", "colab-check", "gpu-check", "sync", "readme", "lint"):
        assert re.search(rf"(?m)^{re.escape(target)}:", (ROOT / "Makefile").read_text()), target


def test_ci_runs_the_readme_test_command_and_nothing_else():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert "make test" in commands
    assert [c for c in commands if c.startswith("make")] == ["make test"]


def test_the_repository_url_is_written_by_hand_only_in_config():
    import yaml

    url = str(yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]).rstrip("/")
    slug = url.removeprefix("https://github.com/")
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    found = []
    for rel in tracked:
        path = ROOT / rel
        if rel == "_config.yml" or not path.is_file() or path.suffix in {".png", ".json"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if slug not in text:
            continue
        if rel == "README.md":
            text = re.sub(r"<!-- chapters:start -->.*?<!-- chapters:end -->", "", text, flags=re.S)
        elif rel.endswith(".ipynb"):
            nb = json.loads(text)
            code = [c for c in nb["cells"] if c["cell_type"] == "code"]
            text = json.dumps([c for c in nb["cells"] if not code or c is not code[0]])  # install cell: generated
        if slug in text:
            found.append(rel)
    assert found == [], f"the repository URL is typed outside _config.yml (generate it instead): {found}"


def test_chapter_links_follow_the_configured_repository():
    cfg = {"repository": {"url": "https://github.com/someone/fork", "branch": "trunk"}}
    table = readme_results.chapter_links(cfg)
    assert "https://colab.research.google.com/github/someone/fork/blob/trunk/book/01_padding.ipynb" in table
    assert table.count("colab-badge.svg") == len(list((ROOT / "book").glob("*.ipynb")))
