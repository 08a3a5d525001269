"""The README's generated parts: the chapter list (with Colab badges) and the results section.

    python tools/readme_results.py           # rewrite README.md between the markers
    python tools/readme_results.py --check   # exit 1 when README.md and book/results/*.json disagree

Both parts sit between markers (`<!-- chapters:start -->` ... `<!-- chapters:end -->`,
`<!-- results:start -->` ... `<!-- results:end -->`) and are written only by this script: every number
comes from a file under book/results/, and every machine is described as that file records it.
Colab links are built from `_config.yml`'s `repository.url` and `branch`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

from seqtag.experiments.best_seeds import accuracy_decimals

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "book" / "results"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
# Files that hold numbers published elsewhere, not measured here: no machine record is expected.
NOT_MEASURED = {"ewt_published"}
MACHINE_KEYS = ("cpu", "cpu_count", "gpu", "torch", "load_average", "schedule")


# ---------------------------------------------------------------------------------------------- util
def load_all(folder: Path = RESULTS) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


def pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f} %"


def times(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def machine_record(data: dict) -> dict:
    """The machine a file records (`machine`, as seqtag.io.save_results writes it; older files keep
    some of it in `environment` or at the top level: those are read too, never guessed)."""
    rec: dict = {}
    env = data.get("environment") or {}
    if env:
        rec.update({"cpu_count": env.get("cpus"), **{k: v for k, v in env.items() if k != "cpus"}})
    for key in ("torch", "device", "threads"):
        if key in data and not isinstance(data[key], dict):
            rec.setdefault(key, data[key])
    rec.update({k: v for k, v in (data.get("machine") or {}).items() if v is not None or k not in rec})
    if "threads" in rec:
        rec.setdefault("torch_threads", rec.pop("threads"))
    return rec


def missing_machine_keys(data: dict) -> list[str]:
    """Keys of the machine record (`machine`) a measured results file lacks."""
    rec = data.get("machine")
    if not isinstance(rec, dict):
        return ["machine"]
    return [k for k in MACHINE_KEYS if k not in rec]


def describe_machine(data: dict, schedule: bool = True) -> str:
    """One line: CPU model and cores, GPU, torch, threads, load, schedule, date, as recorded
    (``schedule=False``: the machine alone, up to the load)."""
    rec = machine_record(data)
    parts = []
    cpu = rec.get("cpu") or "CPU model not recorded"
    cores = rec.get("cpu_count")
    parts.append(f"{cpu}, {cores} CPUs" if cores else cpu)
    parts.append(f"GPU {rec['gpu']}" if rec.get("gpu") else ("no GPU" if "gpu" in rec else "GPU not recorded"))
    parts.append(f"torch {rec['torch']}" if rec.get("torch") else "torch not recorded")
    if rec.get("torch_threads"):
        parts.append(f"torch threads: {rec['torch_threads']}")
    load = rec.get("load_average")
    parts.append(f"load {load[0]:.1f}" if isinstance(load, list) and load else "load not recorded")
    if not schedule:
        return "; ".join(parts)
    name = rec.get("schedule")
    if isinstance(name, dict):
        name = name.get("name") or ", ".join(f"{k}={v}" for k, v in name.items())
    if name is None and isinstance(data.get("config"), dict) and "quick" in data["config"]:
        name = "quick" if data["config"]["quick"] else "full"
    parts.append(f"schedule: {name}" if name else "schedule not recorded")
    if rec.get("date"):
        parts.append(str(rec["date"]))
    return "; ".join(parts)


# ------------------------------------------------------------------------------------------ chapters
def chapter_links(config: dict | None = None) -> str:
    config = config or yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = str(config["repository"]["url"]).rstrip("/")
    branch = config["repository"].get("branch", "main")
    slug = re.sub(r"^https://github\.com/", "", repo)
    sys.path.insert(0, str(ROOT / "tools"))
    import run_chapters

    lines = ["| chapter | open in Colab |", "| --- | --- |"]
    for nb in run_chapters.chapters():
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        title = next((ln[2:].strip() for c in cells if c["cell_type"] == "markdown"
                      for ln in "".join(c["source"]).splitlines() if ln.startswith("# ")), nb.stem)
        rel = nb.relative_to(ROOT).as_posix()
        url = f"https://colab.research.google.com/github/{slug}/blob/{branch}/{rel}"
        lines.append(f"| [{title}]({rel}) | [![Open In Colab]({BADGE})]({url}) |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- results
def accuracy_rows(files: dict[str, dict]) -> list[str]:
    rows = []
    for name, d in files.items():  # every file of one trained tagger: `test` scores and a `tagset`
        if name.startswith("best_seed"):  # the best preset's seeds: reported together from best.json
            continue
        t = d.get("test")
        if not (isinstance(t, dict) and "accuracy" in t and d.get("tagset")):
            continue
        what = f"preset `{d.get('preset', 'default')}`"
        if (d.get("tagger_config") or {}).get("unk_signatures") is False or name.endswith("_plain"):
            what += ", one `<unk>` (no unknown-word classes)"
        rows.append(
            f"| {what} | {d['tagset'].upper()} | **{pct(t.get('accuracy'))}** | {pct(d.get('dev_accuracy'))} "
            f"| {pct(t.get('iv_accuracy'), 1)} / {pct(t.get('oov_accuracy'), 1)} | {minutes(d.get('train_seconds'))} "
            f"| `{name}.json` |"
        )
    if not rows:
        return []
    head = ["| model | tags | test | dev | known / unknown words (test) | training time | file |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    return head + rows


def best_rows(files: dict[str, dict]) -> list[str]:
    """The `best` preset over its seeds (`best.json`): mean, range, targets, time, machine, ensemble."""
    d = files.get("best")
    if not d or not d.get("summary"):
        return []
    summary, seeds = d["summary"], d["seeds"]
    bound = {t["name"]: t for t in d.get("targets") or []}
    out = [f"`--preset best` (`best.json`: one joint UPOS+XPOS tagger per seed, {len(seeds)} seeds, the epoch chosen "
           "on dev, test scored once; std: over the seeds, n - 1):", "",
           "| tags | test, mean | test, each seed | std | dev, mean | unknown words (test, mean) | target | met |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for tagset in ("upos", "xpos"):
        s = summary.get(tagset)
        if not s:
            continue
        each = " / ".join(pct(r[tagset]["test"]) for r in seeds)
        t = bound.get(f"{tagset}_test_mean", {})
        shown = pct(s["test"]["mean"], accuracy_decimals(s["test"]["mean"], t))  # never hides a missed target
        out.append(f"| {tagset.upper()} | **{shown}** | {each} | {pct(s['test']['std'])} "
                   f"| {pct(s['dev']['mean'])} | {pct(s.get('test_oov', {}).get('mean'), 1)} "
                   f"| {t.get('op', '')} {pct(t.get('bound'), 1)} | {'yes' if t.get('met') else '**no**'} |")
    t = bound.get("train_minutes_max", {})
    runs = "; ".join(f"seed {r['seed']}: {r['train_minutes']:.1f} min, {r['epochs_run']} epochs (best {r['best_epoch']}), "
                     f"{r.get('train_threads') or '?'} torch thread(s), load {r['machine']['load_average'][0]:.1f} when saved"
                     for r in seeds)
    machine_ = {**seeds[0]["machine"], "torch_threads": seeds[0].get("train_threads")}  # the training's threads
    out += ["", f"Training time per model (target {t.get('op', '<=')} {t.get('bound', '?'):g} min per model: "
            f"{'met' if t.get('met') else '**not met**'}): {runs}; "
            f"{describe_machine({'machine': machine_}, schedule=False)} (as seed {seeds[0]['seed']}'s file records it)."]
    e = d.get("ensemble")
    if e:
        out += ["", f"Ensemble of the {len(e['members'])} seeds (an upper reference, not the preset: softmax "
                f"probabilities averaged per output layer): UPOS test {pct(e['upos']['test'])} (dev "
                f"{pct(e['upos']['dev'])}), XPOS test {pct(e['xpos']['test'])} (dev {pct(e['xpos']['dev'])}); "
                f"tagging test ({e['tokens']['test']:,} words) took {e['seconds']['test']:.1f} s with "
                f"{e.get('threads', '?')} thread(s) on {describe_machine({'machine': e['machine']}, schedule=False)}."]
    r = d.get("replication")
    if r:
        rs, each = r["summary"], r["seeds"]
        out += ["", f"The same recipe and seeds run again on {', '.join(r['cpus'])}, kept as `best.json`'s `replication` (its own "
                f"numbers, not mixed into the seeds' above): UPOS test mean {pct(rs['upos']['test']['mean'])} "
                f"({' / '.join(pct(x['upos']['test']) for x in each)}), XPOS {pct(rs['xpos']['test']['mean'])} "
                f"({' / '.join(pct(x['xpos']['test']) for x in each)}), "
                f"{' / '.join(format(x['train_minutes'], '.1f') for x in each)} min per model with "
                f"{'/'.join(str(t) for t in sorted({x.get('train_threads') for x in each}))} torch thread(s); targets judged "
                f"from these alone: " + "; ".join(f"{t['name']} {'met' if t['met'] else '**not met**'}" for t in r["targets"]) + "."]
    return out + [""] + joint_decoding_rows(files) + best_ablation_rows(files)


def joint_decoding_rows(files: dict[str, dict]) -> list[str]:
    """Joint decoding measured on the same weights (`joint_decoding.json`), and whether the preset uses it."""
    d = files.get("joint_decoding")
    if not d or not d.get("checkpoints"):
        return []
    if str(ROOT) not in sys.path:  # the checkout's package, installed or not
        sys.path.insert(0, str(ROOT))
    from seqtag.presets import preset
    rows = d["checkpoints"]
    g = d["mean_gain"]
    each = "; ".join(f"{r['checkpoint']}: UPOS {pct(r['independent']['upos']['test'])} -> {pct(r['joint']['upos']['test'])}, "
                     f"XPOS {pct(r['independent']['xpos']['test'])} -> {pct(r['joint']['xpos']['test'])}, "
                     f"{r['independent']['unseen_pairs']['test']} -> {r['joint']['unseen_pairs']['test']} words with a tag pair "
                     "never seen in training" for r in rows)
    runs = {r.get("run") for r in rows}
    seeds = {s.get("file") for s in (files.get("best") or {}).get("seeds") or []}
    row = next((a["name"] for a in (files.get("best_ablation") or {}).get("rows") or []
                if runs and runs <= {str(f).rsplit("/", 1)[-1] for f in a.get("files") or []}), None)
    whose = ("the preset's seeds" if runs <= seeds else f"the runs of the ablation's `{row}` row" if row
             else "the checkpoints it names")
    return [f"Joint decoding (`--joint-decoding`: the two tags of a word chosen together, among the pairs seen in training; "
            f"`joint_decoding.json`, the same weights decoded both ways, test, on {whose}): {each}. Mean change on test: UPOS "
            f"{100 * g['upos']['test']['mean']:+.2f} points, XPOS {100 * g['xpos']['test']['mean']:+.2f} (dev: "
            f"{100 * g['upos']['dev']['mean']:+.2f}, {100 * g['xpos']['dev']['mean']:+.2f}); "
            f"{'on' if preset('best').get('joint_decoding') else 'off'} in `--preset best`.", ""]


def best_ablation_rows(files: dict[str, dict]) -> list[str]:
    """The best preset's ablation (`best_ablation.json`): each direction, its numbers and its gain."""
    d = files.get("best_ablation")
    if not d or not d.get("rows"):
        return []

    def cell(row: dict, tagset: str, split: str) -> str:
        if tagset not in row:
            return "n/a"
        gain = (row.get("gain") or {}).get(tagset, {}).get(split)
        return pct(row[tagset][split]) + (f" ({100 * gain:+.2f})" if gain is not None else "")

    against = sorted({r["against"] for r in d["rows"] if r.get("against")})
    kept = ("; a row marked *vs X* was measured earlier against row X's run (the preset as it was before a later change) "
            "and is kept as it was: its brackets are X's number minus the row's" if against else "")
    out = ["Ablation of `--preset best` (`best_ablation.json`; each direction is the preset with one option changed, "
           "one run on the preset's seed, or where the row names its seeds, one run per seed (the mean, where several) against the "
           "preset's runs of the same seeds on the same CPU; in brackets the preset's number minus the row's, in points and minutes: "
           "positive accuracy means the preset's own setting is better; minutes depend on the CPU, the torch threads "
           "and the load, which each row records, and are compared only between runs on the same CPU with the same "
           f"threads: against the preset's seed-0 run, or against the run of the preset the bracket names{kept}):", "",
           "| row | UPOS test | UPOS dev | XPOS test | XPOS dev | training time | where (CPU, torch threads, load when saved) | command or change |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in d["rows"]:
        if "speedup" in r:
            continue
        gain = (r.get("gain") or {}).get("train_minutes")
        clock = f" against {r['minutes_against']}" if r.get("minutes_against", "preset") != "preset" else ""
        minutes_ = f"{r['train_minutes']:.1f} min" + (f" ({gain:+.1f}{clock})" if gain is not None else
                                                       " (not compared: no run of the preset on that CPU and threads)"
                                                       if "gain" in r else "")
        command = r["command"] if isinstance(r["command"], str) else f"{len(r['command'])} runs, one per seed"
        command = command.replace(" --device cpu", "").split(" --json")[0]
        if r.get("change"):  # a direction: the option it changes (the command it ran as is in the file)
            command = f"--preset best {r['change']}"
        versus = f" *vs {r['against']}*" if r.get("against") else ""
        load = r.get("load_average") or ((r.get("machine") or {}).get("load_average"))
        load_ = (f"{load[0]:.1f}" if load else "/".join(f"{e['load_average'][0]:.1f}" for e in r["each"])
                 if r.get("each") and all(e.get("load_average") for e in r["each"]) else "see each seed")
        if r.get("cpu"):  # rows written before the CPU and threads were recorded show the load alone
            load_ = f"{r['cpu']}, {r.get('train_threads') or '?'} thread(s), load {load_}"
        out.append(f"| {r['what']} | {cell(r, 'upos', 'test')} | {cell(r, 'upos', 'dev')} | {cell(r, 'xpos', 'test')} "
                   f"| {cell(r, 'xpos', 'dev')} | {minutes_} | {load_} | `{command}`{versus} |")
    for r in d["rows"]:
        if "speedup" in r:
            spread = (f" (rounds: {times(r['speedup_min'])} to {times(r['speedup_max'])})"
                      if r.get("speedup_min") is not None else "")
            out += ["", f"- {r['what']}: {times(r['speedup'])}{spread} at batch size {r.get('batch_size', '?')}, "
                    f"from `{r['source']}`."]
    return out + [""]


def published_rows(files: dict[str, dict]) -> list[str]:
    d = files.get("ewt_published")
    if not d or not d.get("rows"):
        return []
    out = ["| published system | UD version | UPOS | XPOS | contextual embeddings |", "| --- | --- | --- | --- | --- |"]
    for r in d["rows"]:
        out.append(f"| {r['system']} | {r.get('ud_version', '?')} | {pct(r.get('upos'), 2)} | {pct(r.get('xpos'), 2)} "
                   f"| {'yes' if r.get('contextual') else 'no'} |")
    return out


def bench_rows(files: dict[str, dict]) -> list[str]:
    benches = {k: v for k, v in files.items() if k.startswith("bench_") and "ratios" in v}
    if not benches:
        return []
    out = ["| file | device | vs per-sentence | vs random padded | vs random packed | fastest exact strategy: "
           "vs per-sentence, vs random padded (range over rounds) | busy processes | padding random / bucketed "
           "| roofline | targets met |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, d in benches.items():
        r = d.get("ratios", {})
        pad = d.get("pad_fraction", {})
        targets = d.get("targets") or []
        met = f"{sum(bool(t.get('met')) for t in targets)} of {len(targets)}" if targets else "n/a"
        out.append(
            f"| `{name}.json` | {d.get('device', '?')} | {times(r.get('bucketed_packed_vs_per_sentence'))} "
            f"| {times(r.get('bucketed_packed_vs_random_padded'))} | {times(r.get('bucketed_packed_vs_random_packed'))} "
            f"| {fastest_exact(d)} | {(d.get('busy') or {}).get('processes', 'not recorded')} "
            f"| {pct(pad.get('random'), 1)} / {pct(pad.get('bucketed'), 1)} | {pct(d.get('roofline_fraction'), 1)} "
            f"| {met} |"
        )
    return out


def fastest_exact(d: dict) -> str:
    """The fastest exact strategy of a benchmark file and its two ratios with their round ranges."""
    best = d.get("best_exact")
    if not best:
        return "not recorded"
    parts = []
    for key in ("vs_per_sentence", "vs_random_padded"):
        rng = (best.get("spread") or {}).get(key)
        parts.append(times(best.get(key)) + (f" ({rng['min']:.2f}-{rng['max']:.2f})" if rng else ""))
    return f"`{best['strategy']}`: " + ", ".join(parts)


def load_lines(files: dict[str, dict]) -> list[str]:
    """Each benchmark run under load (`busy` processes) against the quiet run of the same benchmark."""
    from seqtag.bench.report import compare_runs

    out = []
    quiet = {k: v for k, v in files.items() if k.startswith("bench_") and "ratios" in v
             and not (v.get("busy") or {}).get("processes") and v.get("best_exact")}
    for name, d in files.items():
        busy = (d.get("busy") or {}).get("processes")
        if not (name.startswith("bench_") and busy):
            continue
        for qname, q in quiet.items():
            try:
                cmp = compare_runs(q, d)
            except ValueError:
                continue
            changes = ", ".join(f"{k} {v['quiet']:.2f}x -> {v['loaded']:.2f}x ({100 * v['change']:+.0f} %)"
                                for k, v in cmp["ratios"].items() if k.startswith("best_exact"))
            out.append(f"- `{name}.json` ({busy} busy process(es)) against `{qname}.json` (no busy process): {changes}; every "
                       f"ratio within {100 * cmp['tolerance']:.0f} % of the quiet one: **{'yes' if cmp['held'] else 'no'}**.")
            break
    return out


def comparison_rows(files: dict[str, dict]) -> list[str]:
    """Experiments that compare models (seqtag.experiments: `experiment`, `runs` with test scores)."""
    out = []
    for name, d in files.items():
        runs = d.get("runs")
        if not (d.get("experiment") and isinstance(runs, dict)):
            continue
        rows = [r for r in runs.values() if isinstance(r, dict) and "test_accuracy" in r]
        if not rows:
            continue
        sched = d.get("schedule") or {}
        out += [f"`{name}.json` (schedule {sched.get('name', '?')}: up to {sched.get('epochs', '?')} epochs, "
                f"the epoch chosen on dev, test scored once):", "",
                "| tags | model | test (tokens) | test (whole sentences) | unknown words | best epoch |",
                "| --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            out.append(
                f"| {str(r.get('tagset', '?')).upper()} | {r.get('model', '?')} | **{pct(r.get('test_accuracy'))}** "
                f"| {pct(r.get('test_sentence_accuracy'), 1)} | {pct(r.get('test_oov_accuracy'), 1)} "
                f"| {r.get('best_epoch', '?')} |"  # no seconds: the runs met different loads (see *_timing.json)
            )
        out.append("")
    return out


def ddp_rows(files: dict[str, dict]) -> list[str]:
    d = files.get("ddp_speed")
    if not d or not isinstance(d.get("summary"), dict):
        return []
    out = ["| processes x threads | runs | tokens/s | seconds per epoch | speed-up over 1x1 |", "| --- | --- | --- | --- | --- |"]
    for name, r in d["summary"].items():
        out.append(f"| {name} | {r.get('runs', '?')} | {r.get('tokens_per_second', 0):,.0f} "
                   f"| {r.get('seconds_per_epoch', 0):.1f} | {times(r.get('speedup_over_1x1'))} |")
    return out


def target_lines(files: dict[str, dict]) -> list[str]:
    out = []
    for name, d in files.items():
        if not name.startswith("bench_") or not d.get("targets"):
            continue
        items = []
        for t in d["targets"]:
            value = pct(t["value"], 1) if "fraction" in t["name"] else times(t["value"])
            bound = pct(t["bound"], 0) if "fraction" in t["name"] else f"{t['bound']:g}x"
            items.append(f"{t['what']} {t['op']} {bound}: {value}, {'met' if t.get('met') else '**not met**'}")
        out.append(f"- `{name}.json`: " + "; ".join(items) + ".")
    return out


def tagging_lines(files: dict[str, dict]) -> list[str]:
    """Tagging throughput, where a benchmark stored it (`tagging`: corpus, model, runs by threads)."""
    out = []
    for name, d in files.items():
        t = d.get("tagging") if name.startswith("bench_") else None
        if isinstance(t, dict) and t.get("runs"):
            runs = ", ".join(f"{r['words_per_s']:,.0f} words/s with {r['threads']} thread(s)" for r in t["runs"])
            out.append(f"- `{name}.json`: tagging {t.get('corpus', '?')} on the CPU ({t.get('model', '?')}, "
                       f"batches of {t.get('batch_size', '?')}): {runs}.")
    return out


def padding_lines(files: dict[str, dict]) -> list[str]:
    """The bucketed pad fraction in the training loop's pool, where a benchmark stored it."""
    out = []
    for name, d in files.items():
        tp = (d.get("padding") or {}).get("training_pool") if name.startswith("bench_") else None
        if isinstance(tp, dict) and "bucketed" in tp:
            out.append(f"- `{name}.json`: with training's pool of {tp.get('pool_factor', '?')} batches, bucketed "
                       f"batches are {pct(tp['bucketed'], 1)} padding (the table: the benchmark's pool of "
                       f"{d.get('config', {}).get('pool_factor', '?')}).")
    return out


def results_section(files: dict[str, dict] | None = None) -> str:
    files = load_all() if files is None else files
    parts: list[str] = []
    acc = accuracy_rows(files)
    if acc:
        parts += ["Accuracy on UD English EWT r2.16 test (the epoch chosen on dev):", "", *acc, ""]
    best = best_rows(files)
    if best:
        parts += best
    pub = published_rows(files)
    if pub:
        parts += ["Published accuracies on EWT test, for comparison (`ewt_published.json`, copied from "
                  "the sources it names, not measured here):", "", *pub, ""]
    bench = bench_rows(files)
    if bench:
        parts += ["Training speed at the batch size each file's `ratio_batch_size` names (`python -m seqtag bench`): "
                  "bucketed + packed batches against the other strategies, and the fastest exact strategy (the "
                  "same outputs as packing) with the range of its ratio over the timed rounds; padding: share of "
                  "pad positions in the benchmark's pool of batches:", "", *bench, "", "Targets, as each file states and judges them:", "",
                  *target_lines(files), ""]
        loaded = load_lines(files)
        if loaded:
            parts += ["Under load (`bench --busy N` keeps N other processes spinning for the whole measurement):", "",
                      *loaded, ""]
    comparisons = comparison_rows(files)
    if comparisons:
        parts += ["Model comparisons:", "", *comparisons]
    ddp = ddp_rows(files)
    if ddp:
        sched = files["ddp_speed"].get("schedule") or {}
        size = sched.get("train_size")
        parts += [f"Data-parallel training (`ddp_speed.json`; {sched.get('epochs', '?')} epoch(s) per run on "
                  f"{'all of EWT train' if size == 0 else f'{size} training sentences'}):", "", *ddp, ""]
    extra = padding_lines(files) + tagging_lines(files)
    if extra:
        parts += [*extra, ""]
    parts += ["Where each file was measured (as it records it):", ""]
    for name, d in files.items():
        if name in NOT_MEASURED:
            continue
        parts.append(f"- `{name}.json`: {describe_machine(d)}")
    return "\n".join(parts).rstrip() + "\n"


# --------------------------------------------------------------------------------------------- README
def replace_between(text: str, tag: str, body: str) -> str:
    start, end = f"<!-- {tag}:start -->", f"<!-- {tag}:end -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {start} ... {end} markers")
    note = f"<!-- generated by tools/readme_results.py from {'book/results/*.json' if tag == 'results' else '_config.yml and _toc.yml'}: do not edit -->"
    return pattern.sub(lambda _: f"{start}\n{note}\n\n{body.rstrip()}\n\n{end}", text)


def render(text: str, files: dict[str, dict] | None = None) -> str:
    text = replace_between(text, "chapters", chapter_links())
    return replace_between(text, "results", results_section(files))


def check(text: str | None = None, files: dict[str, dict] | None = None) -> list[str]:
    """Differences between README.md's generated parts and what the files say (one line each)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    want = render(text, files)
    if want == text:
        return []
    import difflib

    diff = difflib.unified_diff(text.splitlines(), want.splitlines(), "README.md", "generated", lineterm="", n=0)
    return [ln for ln in diff if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 when README.md is stale")
    args = ap.parse_args()
    if args.check:
        found = check()
        if found:
            print("README.md disagrees with book/results/*.json or _config.yml (run tools/readme_results.py):")
            print("\n".join(found[:40]))
            return 1
        return 0
    text = README.read_text(encoding="utf-8")
    new = render(text)
    if new != text:
        README.write_text(new, encoding="utf-8")
        print("README.md: generated sections rewritten")
    else:
        print("README.md: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
