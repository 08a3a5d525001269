"""The command line: ``python -m seqtag train|tag|evaluate|bench`` (``--help`` on each).

    python -m seqtag train --out upos.pt                    # EWT train, model chosen on EWT dev
    python -m seqtag train --train my-train.conllu --dev my-dev.conllu --test my-test.conllu \\
        --tagset xpos --out xpos.pt                         # any CoNLL-U files, either tag column
    python -m seqtag tag --model upos.pt input.conllu --out tagged.conllu
    echo "I don't think it's too late." | python -m seqtag tag --model upos.pt --tokenize
    python -m seqtag evaluate --model upos.pt my-test.conllu --json
    python -m seqtag train --aux-tagset xpos --out joint.pt # joint UPOS+XPOS: tag and evaluate use both

Every option is a field of a dataclass (:class:`~seqtag.config.TrainConfig`,
:class:`~seqtag.models.TaggerConfig`, and the command dataclasses below) turned into an option by
:mod:`seqtag.options`, so ``--help`` says what each one does from the field's own documentation.
Options are never abbreviated (``--dev`` is not ``--device``).

Errors in the input (a missing file, a malformed line, a checkpoint from another version) end
the command with one line on stderr naming the file and line, and a non-zero exit status; set
``SEQTAG_DEBUG=1`` for the traceback. Output files are written atomically: a failed command
leaves no half-written file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from seqtag import __version__
from seqtag.options import ArgumentParser, add_options, build

__all__ = ["main", "build_parser", "TrainCommand", "TagCommand", "EvaluateCommand"]

EXIT_ERROR = 1
EWT = Path("ewt")  # --test without a file: the EWT test split


class CliError(Exception):
    """A problem to report in one line (no traceback)."""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _opt(text: str, **more: Any) -> dict[str, Any]:
    return {"help": text, **more}


_FILE = {"metavar": "FILE", "show_default": False}
_MODEL = _opt("checkpoint written by 'train'", metavar="MODEL.pt")
_DEVICE = _opt("where the model runs: auto (CUDA if available), cpu, cuda or cuda:N")
_THREADS = _opt("PyTorch CPU threads (1 is robust on shared CPUs)", type=_positive, metavar="N")
_BATCH = _opt("sentences per batch", type=_positive, metavar="N")


@dataclass
class TrainCommand:
    """What ``train`` reads and writes (the hyper-parameters are TrainConfig and TaggerConfig)."""

    out: Path = field(metadata=_opt("checkpoint to write (atomically; the best epoch's model)", metavar="MODEL.pt"))
    train: Path | None = field(default=None, metadata=_opt(
        "training sentences: any CoNLL-U file (needs --dev; default: EWT train)", **_FILE))
    dev: Path | None = field(default=None, metadata=_opt(
        "CoNLL-U file on which the best epoch is chosen (default: EWT dev)", **_FILE))
    test: Path | None = field(default=None, metadata=_opt(
        "also evaluate the chosen model on this CoNLL-U file once; --test alone: EWT test", const=EWT, **_FILE))
    data: Path | None = field(default=None, metadata=_opt(
        "folder with the EWT files (default: $SEQTAG_DATA, else download)", metavar="DIR", show_default=False))
    preset: str = field(default="default", metadata=_opt(
        "named hyper-parameters from seqtag.presets, layered: dataclass defaults < preset < typed options"))
    results: Path | None = field(default=None, metadata=_opt(
        "also write the numbers (dev, test, time, history, options) as JSON", metavar="FILE.json", show_default=False))
    quiet: bool = field(default=False, metadata=_opt("no progress bars or per-epoch lines"))
    char_cnn: bool = field(default=False, metadata=_opt("add character features to each word: a CNN, or a BiLSTM with --char-encoder lstm (model option)"))


@dataclass
class TagCommand:
    """The options of ``tag``."""

    model: Path = field(metadata=_MODEL)
    input: str = field(default="-", metadata=_opt("input file; - is standard input", positional=True, metavar="FILE|-"))
    out: Path | None = field(default=None, metadata=_opt(
        "output file, written atomically (default: standard output)", **_FILE))
    format: Literal["auto", "conllu", "text"] = field(default="auto", metadata=_opt(
        "input format: conllu (the tag column is replaced, every other byte kept), text (one sentence "
        "per line; CoNLL-U out), auto (CoNLL-U if the first line is a comment or a token line)"))
    aux: bool = field(default=True, metadata=_opt(
        "a joint model (trained with --aux-tagset) writes both tag columns, UPOS and XPOS; --no-aux "
        "writes its main tag set's column only"))
    tokenize: bool = field(default=False, metadata=_opt(
        "text input: split each line into EWT tokens (seqtag.tokenize: don't -> do n't, late. -> late .) "
        "instead of at spaces; each sentence's '# text =' keeps the line as typed"))
    batch_size: int = field(default=256, metadata=_BATCH)
    device: str = field(default="auto", metadata=_DEVICE)
    threads: int = field(default=1, metadata=_THREADS)


@dataclass
class EvaluateCommand:
    """The options of ``evaluate``."""

    model: Path = field(metadata=_MODEL)
    file: Path | None = field(default=None, metadata=_opt(
        "gold CoNLL-U file, any name (default: EWT test); the model's tag column must be filled",
        positional=True, **_FILE))
    data: Path | None = field(default=None, metadata=_opt(
        "folder with the EWT files when no FILE is given (default: $SEQTAG_DATA, else download)",
        metavar="DIR", show_default=False))
    json: bool = field(default=False, metadata=_opt("print a JSON object (accuracy, tokens, oov_accuracy, ...)"))
    per_tag: bool = field(default=False, metadata=_opt("also print precision, recall and F1 per tag"))
    aux: bool = field(default=True, metadata=_opt(
        "a joint model (trained with --aux-tagset) is scored on both tag columns, which must then both be "
        "filled; --no-aux scores its main tag set only"))
    batch_size: int = field(default=256, metadata=_BATCH)
    device: str = field(default="auto", metadata=_DEVICE)
    threads: int = field(default=1, metadata=_THREADS)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m seqtag`` parser with its four subcommands (no abbreviated options)."""
    from seqtag.config import TrainConfig
    from seqtag.models import TaggerConfig
    from seqtag.presets import preset

    parser = ArgumentParser(prog="python -m seqtag", description="Train, apply and evaluate the seqtag POS tagger.")
    parser.add_argument("--version", action="version", version=f"seqtag {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    train = sub.add_parser(
        "train", help="train a tagger on CoNLL-U files (default: UD English EWT), the epoch chosen on dev",
        description="Train on CoNLL-U files (default: UD English EWT train/dev), keep the epoch with the "
        "best dev accuracy, write the checkpoint. Options are layered: dataclass defaults < --preset < "
        "the options you type; each option's shown default is the 'default' preset's.",
    )
    defaults = preset("default")  # what `train` uses when neither --preset nor the option is given
    seen: set[str] = set()
    add_options(train.add_argument_group("files and run"), TrainCommand, defaults=defaults, seen=seen)
    add_options(train.add_argument_group("training options (seqtag.config.TrainConfig)"), TrainConfig,
                defaults=defaults, seen=seen)
    add_options(train.add_argument_group("model options (seqtag.models.TaggerConfig)"), TaggerConfig,
                defaults=defaults, seen=seen | {"vocab_size", "num_tags", "char_vocab_size"})  # from the data
    train.set_defaults(func=cmd_train)

    tag = sub.add_parser("tag", help="tag CoNLL-U, plain text, or raw text (--tokenize)",
                         description="Tag CoNLL-U (the model's tag column is replaced, every other byte "
                         "is kept; both UPOS and XPOS for a joint model) or text (one sentence per line; "
                         "the output is CoNLL-U, one block per line with its '# source = FILE:LINE' and "
                         "'# text =').")
    add_options(tag, TagCommand)
    tag.set_defaults(func=cmd_tag)

    ev = sub.add_parser("evaluate", help="token accuracy of a model on a CoNLL-U file",
                        description="Compare the model's tags with the gold column of its tag set "
                        "(both columns for a joint model).")
    add_options(ev, EvaluateCommand)
    ev.set_defaults(func=cmd_evaluate)

    bench = sub.add_parser("bench", help="speed benchmark (seqtag.bench); 'bench --help' for its options",
                           add_help=False, prefix_chars="\0")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(func=cmd_bench)
    return parser


# --- train ------------------------------------------------------------------------------------


def _corpus(path: Path | None, split: str, data: Path | None, tagset: str, aux_tagset: str | None = None,
            hint: str = "") -> list[Any]:
    """Sentences of a user's CoNLL-U file (tag column checked), else of the EWT ``split``; with
    ``aux_tagset`` (a joint model's second tag set) its column must be filled too (``hint``: what to do)."""
    from seqtag.data import ewt_path, load_ewt, read_conllu

    if path is None or path == EWT:
        sentences = load_ewt(split, data)  # type: ignore[arg-type]
        path = ewt_path(split, data)  # type: ignore[arg-type]
    else:
        sentences = read_conllu(path, tagset=tagset)  # type: ignore[arg-type]
    if aux_tagset is not None and any(t == "_" for s in sentences for t in s.tags(aux_tagset)):
        from seqtag.data import ConlluFormatError

        try:
            read_conllu(path, tagset=aux_tagset)  # type: ignore[arg-type]
        except ConlluFormatError as exc:  # the first untagged word, with its own line
            raise CliError(f"{path}:{exc.line}: {exc.problem.split(';')[0]}; {hint}") from None
    return sentences


def _accuracies(main: float, aux: float | None, tagset: str, aux_tagset: str | None) -> str:
    """``0.9512`` for one tag set, ``upos 0.9512, xpos 0.9433`` for a joint model."""
    return f"{main:.4f}" if aux is None else f"{tagset} {main:.4f}, {aux_tagset} {aux:.4f}"


def cmd_train(args: argparse.Namespace) -> int:
    from seqtag.config import TrainConfig, split_overrides
    from seqtag.models import TaggerConfig
    from seqtag.options import typed_values
    from seqtag.presets import preset
    from seqtag.train import fit

    run = build(TrainCommand, args)
    typed = {**typed_values(args, TrainConfig), **typed_values(args, TaggerConfig)}
    if "char_cnn" in vars(args):
        typed["char_cnn"] = run.char_cnn
    try:
        overrides = {**preset(run.preset), **typed}
    except KeyError as exc:
        raise CliError(exc.args[0]) from None
    tagset = overrides.get("tagset", TrainConfig.tagset)
    if "aux_tagset" not in typed and overrides.get("aux_tagset") == tagset:
        # a joint preset (best) with the other --tagset: the preset's main tag set becomes the second one
        overrides["aux_tagset"] = "upos" if tagset == "xpos" else "xpos"
    model_options, train_options = split_overrides(overrides)
    config = TrainConfig(**train_options)
    if run.train is not None and run.dev is None:
        raise CliError(f"--train {run.train} needs --dev FILE: the epoch is chosen on a dev set of the same kind")
    for path, option in [(run.out, "--out"), (run.results, "--results")]:
        if path is not None:
            _check_writable(path, option)
    aux, hint = config.aux_tagset, f"--aux-tagset {config.aux_tagset} learns that column: tag every word"
    train = _corpus(run.train, "train", run.data, config.tagset, aux, hint)
    dev = _corpus(run.dev, "dev", run.data, config.tagset, aux, hint)
    test = _corpus(run.test, "test", run.data, config.tagset, aux, hint) if run.test is not None else None
    start = time.perf_counter()

    def report(epoch: int, history: dict[str, list[float]]) -> None:
        if not run.quiet:
            dev_aux = history["dev_aux_accuracy"][-1] if aux else None
            print(f"epoch {epoch}: train loss {history['train_loss'][-1]:.4f}, dev accuracy "
                  f"{_accuracies(history['dev_accuracy'][-1], dev_aux, config.tagset, aux)} "
                  f"({history['seconds'][-1]:.0f} s)", file=sys.stderr, flush=True)

    result = fit(train, dev, config, model_options, checkpoint=run.out, progress=not run.quiet, on_epoch=report)
    seconds = time.perf_counter() - start
    # The saved model's own dev accuracy: after vocabulary expansion (--expand-vocab) it differs
    # from the best epoch's number in the history, which was measured before the expansion.
    dev_ev, dev_aux = result.evaluate_tagsets(dev)  # joint: both tag sets from one pass
    epochs_run, best = len(result.history["dev_accuracy"]), result.best_epoch
    print(f"dev accuracy {_accuracies(dev_ev.accuracy, dev_aux.accuracy if dev_aux else None, config.tagset, aux)} "
          f"({f'{config.tagset}, ' if aux is None else ''}best epoch {best} of {epochs_run}{', by their mean' if aux else ''}"
          f"{', after vocabulary expansion' if config.embeddings and config.expand_vocab else ''}) "
          f"in {seconds:.0f} s; wrote {run.out}")
    numbers: dict[str, Any] = {
        "command": " ".join(["python -m seqtag", *args.argv]),
        "seqtag_version": __version__,
        "files": {name: str(path) if path not in (None, EWT) else f"EWT {name}"
                  for name, path in [("train", run.train), ("dev", run.dev), ("test", run.test)]
                  if name != "test" or path is not None},
        "tagset": config.tagset,
        "preset": run.preset,
        "dev_accuracy": dev_ev.accuracy,
        "dev_accuracy_best_epoch": result.history["dev_accuracy"][best - 1],
        "best_epoch": best,
        "epochs_run": epochs_run,
        "train_seconds": seconds,
        "train_sentences": min(config.max_sentences or len(train), len(train)),
        "parameters": result.model.num_parameters(),
        "tagger_config": result.model.config.to_dict(),
        "train_config": config.to_dict(),
        "history": result.history,
    }
    if dev_aux is not None:  # joint tagging: the second tag set's numbers, from the same model
        numbers["aux"] = {"tagset": aux, "dev_accuracy": dev_aux.accuracy,
                          "dev_accuracy_best_epoch": result.history["dev_aux_accuracy"][best - 1]}
    if test is not None:  # scored once, after the epoch was chosen on dev (joint: both tag sets in one pass)
        test_ev, test_aux = result.evaluate_tagsets(test)
        for part, tagset, ev in [(numbers, config.tagset, test_ev), (numbers.get("aux"), aux, test_aux)]:
            if ev is None:  # one tag set: no second evaluation
                continue
            part["test"] = ev.summary()
            print(f"test accuracy {f'{tagset} ' if aux else ''}{ev.accuracy:.4f} on {ev.tokens} tokens "
                  f"(OOV {ev.oov_accuracy:.4f} on {ev.oov_tokens}, in-vocabulary {ev.iv_accuracy:.4f})")
    if run.results is not None:
        from seqtag.io import save_results

        save_results(run.results, numbers, device=config.device)
    return 0


# --- tag --------------------------------------------------------------------------------------

def cmd_tag(args: argparse.Namespace) -> int:
    from seqtag.runtime import cpu_threads
    from seqtag.tagio import output, tag_stream, written_tagsets

    opts: TagCommand = build(TagCommand, args)
    tagger = _load(opts.model, opts.device)
    source = "<stdin>" if opts.input == "-" else opts.input
    if opts.input != "-":
        path = Path(opts.input)
        if not path.is_file():
            raise CliError(f"{path}: no such input file")
        if opts.out is not None and opts.out.exists() and os.path.samefile(path, opts.out):
            raise CliError(f"--out {opts.out} is the input file: tag never overwrites its input; choose another name")
    if opts.out is not None:
        _check_writable(opts.out, "--out")
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stream: BinaryIO = (sys.stdin.buffer if opts.input == "-"
                            else stack.enter_context(open(opts.input, "rb")))  # noqa: SIM115
        out = stack.enter_context(output(opts.out))
        with cpu_threads(opts.threads):
            fmt, sentences, tokens = tag_stream(tagger, stream, out, str(source), opts.format, opts.tokenize,
                                                opts.batch_size, opts.aux)
    seconds = time.perf_counter() - start
    print(f"tagged {sentences} sentences, {tokens} tokens ({fmt}{', tokenized' if opts.tokenize else ''}, "
          f"{' and '.join(written_tagsets(tagger, opts.aux))}) in {seconds:.2f} s "
          f"({tokens / max(seconds, 1e-9):.0f} tokens/s)", file=sys.stderr)
    return 0


# --- evaluate ---------------------------------------------------------------------------------


def cmd_evaluate(args: argparse.Namespace) -> int:
    from seqtag.runtime import cpu_threads

    opts: EvaluateCommand = build(EvaluateCommand, args)
    tagger = _load(opts.model, opts.device)
    aux = tagger.aux_tagset if opts.aux else None
    sentences = _corpus(opts.file, "test", opts.data, tagger.tagset, aux,
                        "the joint model is scored on that column: tag every word, or score its main tag set only (--no-aux)")
    name = str(opts.file) if opts.file is not None else "EWT test"
    scored = [(tagger.tagset, False)] + ([(aux, True)] if aux else [])
    for _, second in scored:  # every gold tag known, in both columns, before any scoring
        tagger.check_gold(sentences, name, aux=second)
    with cpu_threads(opts.threads):
        evs = [(tagset, tagger.evaluate(sentences, opts.batch_size, aux=second)) for tagset, second in scored]
    if opts.json:
        reports: list[dict[str, Any]] = [{**ev.summary(), "tagset": tagset, **({"per_tag": ev.per_tag()} if opts.per_tag else {})}
                                         for tagset, ev in evs]
        report = {**reports[0], "sentences": len(sentences), "file": name, "model": str(opts.model)}
        if aux:  # the second tag set of a joint model: the same keys, under "aux"
            report["aux"] = reports[1]
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    for tagset, ev in evs:
        print(f"{tagset} accuracy {ev.accuracy:.4f} on {ev.tokens} tokens "
              f"(OOV {ev.oov_accuracy:.4f} on {ev.oov_tokens} tokens, in-vocabulary {ev.iv_accuracy:.4f})")
    for tagset, ev in evs if opts.per_tag else []:
        print(f"{tagset + ' tag' if aux else 'tag':<8} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}")
        for tag, s in ev.per_tag().items():
            print(f"{tag:<8} {s['precision']:9.4f} {s['recall']:7.4f} {s['f1']:7.4f} {s['support']:8d}")
    return 0


# --- bench ------------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        from seqtag import bench
    except ImportError as exc:
        raise CliError(f"the bench command needs seqtag.bench, which cannot be imported here ({exc})") from None
    parser = ArgumentParser(prog="python -m seqtag bench", description=(bench.__doc__ or "").strip().splitlines()[0])
    bench.add_arguments(parser)
    result = bench.main(parser.parse_args(args.rest))
    return int(result or 0)


# --- helpers ----------------------------------------------------------------------------------


def _load(path: Path, device: str) -> Any:
    from seqtag.tagger import TrainedTagger

    return TrainedTagger.load(path, device=device)


def _check_writable(path: Path, option: str) -> None:
    if path.is_dir():
        raise CliError(f"{option} {path} is a folder; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise CliError(f"{option} {path}: {parent} is not a folder")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, CliError | ValueError | OSError) else f"{type(exc).__name__}: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 = success)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # recorded in train's --results file
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"python -m seqtag {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `... | head`: the reader left, nothing to report
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (silence the exit-time flush)
        return EXIT_ERROR
    except (CliError, ValueError, OSError, RuntimeError, KeyError, ImportError) as exc:
        if os.environ.get("SEQTAG_DEBUG"):
            raise
        print(f"python -m seqtag {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
