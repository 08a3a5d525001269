"""The command line: ``python -m seqtag train|tag|evaluate|bench`` (``--help`` on each).

    python -m seqtag train --out upos.pt                    # EWT train, model chosen on EWT dev
    python -m seqtag tag --model upos.pt input.conllu --out tagged.conllu
    echo "I like green eggs ." | python -m seqtag tag --model upos.pt
    python -m seqtag evaluate --model upos.pt en_ewt-ud-test.conllu --json

Errors in the input (a missing file, a malformed line, a checkpoint from another version) end
the command with one line on stderr and a non-zero exit status; set ``SEQTAG_DEBUG=1`` for the
traceback. Output files are written atomically: a failed command leaves no half-written file.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import sys
import tempfile
import time
import typing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from typing import IO, Any, BinaryIO

from seqtag import __version__

__all__ = ["main", "build_parser"]

EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A problem to report in one line (no traceback)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (``prog: error: ...``), exit status 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


# --- options generated from the configuration dataclasses -----------------------------------

_NOT_OPTIONS = {"vocab_size", "num_tags", "char_vocab_size"}  # sizes come from the data


def _add_dataclass_options(
    group: argparse._ArgumentGroup, cls: type, skip: set[str], defaults: dict[str, Any]
) -> None:
    """One ``--field-name`` per dataclass field (bools get ``--x/--no-x``, Literals get choices).

    Defaults are suppressed, so ``args`` holds only what the user typed: that is layered over
    the preset, which is layered over the dataclass defaults.
    """
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in skip or f.name in _NOT_OPTIONS:
            continue
        skip.add(f.name)  # a name shared by both dataclasses gets one option
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        args = typing.get_args(kind)
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), kind) if optional else kind
        default = defaults.get(f.name, f.default)
        help_text = f"(default: {default})" if default is not MISSING else None
        if base is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
        elif typing.get_origin(base) is typing.Literal:
            group.add_argument(flag, choices=typing.get_args(base), default=argparse.SUPPRESS, help=help_text)
        elif base in (int, float, str):
            convert = _nullable(base) if optional else base
            meta = f.name.split("_")[-1].upper()
            group.add_argument(flag, type=convert, default=argparse.SUPPRESS, metavar=meta, help=help_text)


def _nullable(base: type) -> Any:
    def convert(text: str) -> Any:
        return None if text.lower() in ("none", "null", "") else base(text)

    convert.__name__ = base.__name__  # argparse names the type in its error messages
    return convert


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m seqtag`` parser with its four subcommands."""
    from seqtag.models import TaggerConfig
    from seqtag.presets import preset
    from seqtag.train import TrainConfig

    parser = _Parser(prog="python -m seqtag", description="Train, apply and evaluate the seqtag POS tagger.")
    parser.add_argument("--version", action="version", version=f"seqtag {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser(
        "train",
        help="train a tagger on UD English EWT (train split; model chosen on dev)",
        description="Train on UD English EWT train, keep the epoch with the best dev accuracy, write the "
        "checkpoint. Options are layered: dataclass defaults < --preset < the options you type.",
    )
    train.add_argument("--out", required=True, type=Path, metavar="MODEL.pt", help="checkpoint to write")
    train.add_argument("--data", type=Path, metavar="DIR", help="folder with the EWT files (default: $SEQTAG_DATA, else download)")
    train.add_argument("--preset", default="default", help="named hyper-parameters from seqtag.presets (default: default)")
    train.add_argument("--test", action="store_true", help="also evaluate the chosen model on EWT test")
    train.add_argument("--results", type=Path, metavar="FILE.json", help="write the numbers (dev, test, time, history) as JSON")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    seen: set[str] = set()
    defaults = preset("default")  # what `train` uses when neither --preset nor the option is given
    _add_dataclass_options(
        train.add_argument_group("training options (seqtag.train.TrainConfig)"), TrainConfig, seen, defaults
    )
    model_group = train.add_argument_group("model options (seqtag.models.TaggerConfig)")
    model_group.add_argument("--char-cnn", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                             help="add character-CNN word features (default: off)")
    _add_dataclass_options(model_group, TaggerConfig, seen, defaults)
    train.set_defaults(func=cmd_train)

    tag = sub.add_parser(
        "tag",
        help="tag CoNLL-U or plain text",
        description="Tag CoNLL-U (the model's tag column is replaced, every other byte is kept) or plain "
        "text (one whitespace-tokenized sentence per line; the output is CoNLL-U).",
    )
    tag.add_argument("--model", required=True, type=Path, metavar="MODEL.pt")
    tag.add_argument("input", nargs="?", default="-", metavar="FILE|-", help="input file (default: - = stdin)")
    tag.add_argument("--out", type=Path, metavar="FILE", help="output file, written atomically (default: stdout)")
    tag.add_argument("--format", choices=("auto", "conllu", "text"), default="auto",
                     help="input format (default: auto = CoNLL-U if the first line is a comment or a token line)")
    tag.add_argument("--batch-size", type=_positive, default=256, metavar="N", help="sentences per batch (default: 256)")
    _runtime_options(tag)
    tag.set_defaults(func=cmd_tag)

    ev = sub.add_parser("evaluate", help="token accuracy of a model on a CoNLL-U file",
                        description="Compare the model's tags with the gold column of its tag set.")
    ev.add_argument("--model", required=True, type=Path, metavar="MODEL.pt")
    ev.add_argument("file", type=Path, metavar="FILE.conllu")
    ev.add_argument("--json", action="store_true", help="print a JSON object (accuracy, tokens, oov_accuracy, ...)")
    ev.add_argument("--per-tag", action="store_true", help="also print precision/recall/F1 per tag")
    ev.add_argument("--batch-size", type=_positive, default=256, metavar="N")
    _runtime_options(ev)
    ev.set_defaults(func=cmd_evaluate)

    bench = sub.add_parser("bench", help="speed benchmark (seqtag.bench); 'bench --help' for its options",
                           add_help=False, prefix_chars="\0")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(func=cmd_bench)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda... (default: auto)")
    p.add_argument("--threads", type=_positive, default=1, metavar="N",
                   help="PyTorch CPU threads (default: 1, robust on shared CPUs)")


# --- train ------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from seqtag.data import load_ewt
    from seqtag.presets import preset
    from seqtag.train import TrainConfig, fit, split_overrides

    reserved = {"command", "func", "argv", "out", "data", "preset", "test", "results", "quiet"}
    typed = {k: v for k, v in vars(args).items() if k not in reserved}
    try:
        overrides = {**preset(args.preset), **typed}
    except KeyError as exc:
        raise CliError(exc.args[0]) from None
    model_options, train_options = split_overrides(overrides)
    config = TrainConfig(**train_options)
    _check_writable(args.out, "--out")
    if args.results is not None:
        _check_writable(args.results, "--results")
    train, dev = load_ewt("train", args.data), load_ewt("dev", args.data)
    test = load_ewt("test", args.data) if args.test else None
    start = time.perf_counter()
    def report(epoch: int, history: dict[str, list[float]]) -> None:
        if not args.quiet:
            print(f"epoch {epoch}: train loss {history['train_loss'][-1]:.4f}, dev accuracy "
                  f"{history['dev_accuracy'][-1]:.4f} ({history['seconds'][-1]:.0f} s)", file=sys.stderr, flush=True)

    result = fit(train, dev, config, model_options, checkpoint=args.out, progress=not args.quiet, on_epoch=report)
    seconds = time.perf_counter() - start
    dev_acc = max(result.history["dev_accuracy"])
    epochs_run = len(result.history["dev_accuracy"])
    print(f"dev accuracy {dev_acc:.4f} ({config.tagset}, best epoch {result.best_epoch} of {epochs_run}) "
          f"in {seconds:.0f} s; wrote {args.out}")
    numbers: dict[str, Any] = {
        "command": " ".join(["python -m seqtag", *args.argv]),
        "seqtag_version": __version__,
        "tagset": config.tagset,
        "preset": args.preset,
        "dev_accuracy": dev_acc,
        "best_epoch": result.best_epoch,
        "epochs_run": epochs_run,
        "train_seconds": seconds,
        "train_sentences": config.max_sentences or len(train),
        "parameters": result.model.num_parameters(),
        "tagger_config": result.model.config.to_dict(),
        "train_config": config.to_dict(),
        "history": result.history,
    }
    if test is not None:
        ev = result.evaluate(test)
        numbers["test"] = ev.summary()
        print(f"test accuracy {ev.accuracy:.4f} on {ev.tokens} tokens "
              f"(OOV {ev.oov_accuracy:.4f} on {ev.oov_tokens}, in-vocabulary {ev.iv_accuracy:.4f})")
    if args.results is not None:
        with _atomic_output(args.results, binary=False) as out:
            json.dump(numbers, out, indent=2, sort_keys=True)
            out.write("\n")
    return 0


# --- tag --------------------------------------------------------------------------------------

_TOKEN_LINE = re.compile(rb"^\d+([.-]\d+)?\t")


def cmd_tag(args: argparse.Namespace) -> int:
    from seqtag.train import cpu_threads

    tagger = _load(args.model, args.device)
    source = "<stdin>" if args.input == "-" else args.input
    if args.input != "-":
        path = Path(args.input)
        if not path.is_file():
            raise CliError(f"{path}: no such input file")
        if args.out is not None and args.out.exists() and os.path.samefile(path, args.out):
            raise CliError(f"--out {args.out} is the input file: tag never overwrites its input; choose another name")
    if args.out is not None:
        _check_writable(args.out, "--out")
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stream: BinaryIO = (sys.stdin.buffer if args.input == "-"
                            else stack.enter_context(open(args.input, "rb")))  # noqa: SIM115
        lines, fmt = _sniff(iter(stream), args.format)
        out = stack.enter_context(_atomic_output(args.out, binary=True))
        with cpu_threads(args.threads):
            tag_stream = _tag_conllu if fmt == "conllu" else _tag_text
            sentences, tokens = tag_stream(tagger, lines, str(source), out, args.batch_size)
    seconds = time.perf_counter() - start
    print(f"tagged {sentences} sentences, {tokens} tokens ({fmt}) in {seconds:.2f} s "
          f"({tokens / max(seconds, 1e-9):.0f} tokens/s)", file=sys.stderr)
    return 0


def _sniff(lines: Iterator[bytes], fmt: str) -> tuple[Iterator[bytes], str]:
    """Decide CoNLL-U or text from the first non-blank line, without losing any line."""
    if fmt != "auto":
        return lines, fmt
    seen: list[bytes] = []
    for line in lines:
        seen.append(line)
        if line.strip():
            fmt = "conllu" if line.lstrip().startswith(b"#") or _TOKEN_LINE.match(line) else "text"
            break
    return itertools.chain(seen, lines), ("text" if fmt == "auto" else fmt)


def _batched(items: Iterable[Any], size: int, weight: Any) -> Iterator[list[Any]]:
    """Group ``items`` so that each group holds ``size`` weighted items (the last may hold fewer)."""
    group: list[Any] = []
    count = 0
    for item in items:
        group.append(item)
        count += weight(item)
        if count >= size:
            yield group
            group, count = [], 0
    if group:
        yield group


def _tag_conllu(tagger: Any, lines: Iterator[bytes], source: str, out: IO[bytes], batch_size: int) -> tuple[int, int]:
    from seqtag.data import TAG_COLUMN, iter_conllu

    column = TAG_COLUMN[tagger.tagset]
    sentences = tokens = 0
    chunks = iter_conllu(lines, source)
    for group in _batched(chunks, batch_size, lambda c: c.sentence is not None):
        labelled = [c for c in group if c.sentence is not None]
        predicted = iter(tagger.tag([c.sentence.words for c in labelled]))
        for chunk in group:
            if chunk.sentence is not None:
                for row, tag in zip(chunk.word_rows, next(predicted), strict=True):
                    cols = chunk.lines[row].split(b"\t")
                    cols[column] = tag.encode("utf-8")
                    chunk.lines[row] = b"\t".join(cols)
                sentences, tokens = sentences + 1, tokens + len(chunk.word_rows)
            out.writelines(chunk.lines)
    return sentences, tokens


def _text_sentences(lines: Iterator[bytes], source: str) -> Iterator[tuple[int, str]]:
    for lineno, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8").removeprefix("\ufeff") if lineno == 1 else raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CliError(f"{source}:{lineno}: not UTF-8 (byte 0x{raw[exc.start]:02x}); convert the input to UTF-8") from None
        if text.strip():
            yield lineno, text.strip()


def _tag_text(tagger: Any, lines: Iterator[bytes], source: str, out: IO[bytes], batch_size: int) -> tuple[int, int]:
    from seqtag.data import Sentence, format_conllu

    sentences = tokens = 0
    for group in _batched(_text_sentences(lines, source), batch_size, lambda _: 1):
        words = [text.split() for _, text in group]
        for (lineno, _), ws, tags in zip(group, words, tagger.tag(words), strict=True):
            sentences += 1
            tokens += len(ws)
            blank = ["_"] * len(ws)
            upos, xpos = (tags, blank) if tagger.tagset == "upos" else (blank, tags)
            out.write(format_conllu(Sentence(ws, upos, xpos, sent_id=str(sentences), line=lineno)).encode("utf-8"))
    if sentences == 0:
        raise CliError(f"{source}: no sentence to tag (the input is empty or blank)")
    return sentences, tokens


# --- evaluate ---------------------------------------------------------------------------------


def cmd_evaluate(args: argparse.Namespace) -> int:
    from seqtag.data import read_conllu
    from seqtag.train import cpu_threads

    tagger = _load(args.model, args.device)
    sentences = read_conllu(args.file)
    for s in sentences:
        for tag, word in zip(s.tags(tagger.tagset), s.words, strict=True):  # type: ignore[arg-type]
            if tag not in tagger.tags or tag == "<pad>":
                raise CliError(
                    f"{args.file}:{s.line}: gold {tagger.tagset.upper()} tag {tag!r} (word {word!r}) is not one of "
                    f"the model's {len(tagger.tags) - 1} tags; is the file tagged with {tagger.tagset}?"
                )
    with cpu_threads(args.threads):
        ev = tagger.evaluate(sentences, args.batch_size)
    if args.json:
        report: dict[str, Any] = {**ev.summary(), "tagset": tagger.tagset, "sentences": len(sentences),
                                  "file": str(args.file), "model": str(args.model)}
        if args.per_tag:
            report["per_tag"] = ev.per_tag()
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    print(f"{tagger.tagset} accuracy {ev.accuracy:.4f} on {ev.tokens} tokens "
          f"(OOV {ev.oov_accuracy:.4f} on {ev.oov_tokens} tokens, in-vocabulary {ev.iv_accuracy:.4f})")
    if args.per_tag:
        print(f"{'tag':<8} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}")
        for tag, s in ev.per_tag().items():
            print(f"{tag:<8} {s['precision']:9.4f} {s['recall']:7.4f} {s['f1']:7.4f} {s['support']:8d}")
    return 0


# --- bench ------------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        from seqtag import bench
    except ImportError as exc:
        raise CliError(f"the bench command needs seqtag.bench, which cannot be imported here ({exc})") from None
    parser = _Parser(prog="python -m seqtag bench", description=(bench.__doc__ or "").strip().splitlines()[0])
    bench.add_arguments(parser)
    result = bench.main(parser.parse_args(args.rest))
    return int(result or 0)


# --- helpers ----------------------------------------------------------------------------------


def _load(path: Path, device: str) -> Any:
    from seqtag.train import TrainedTagger

    return TrainedTagger.load(path, device=device)


def _check_writable(path: Path, option: str) -> None:
    if path.is_dir():
        raise CliError(f"{option} {path} is a folder; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise CliError(f"{option} {path}: {parent} is not a folder")


@contextlib.contextmanager
def _atomic_output(path: Path | None, binary: bool) -> Iterator[Any]:
    """Write to ``path`` through a temporary file renamed at the end (stdout when ``path`` is None)."""
    from seqtag.train import default_file_mode

    if path is None:
        yield sys.stdout.buffer if binary else sys.stdout
        (sys.stdout.buffer if binary else sys.stdout).flush()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            yield f
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
