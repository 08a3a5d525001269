"""seqtag.options: dataclass fields -> argparse options, help from the fields' metadata."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from seqtag.options import (
    ArgumentParser,
    UndocumentedFieldError,
    add_options,
    build,
    typed_values,
    undocumented_fields,
)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


@dataclass
class Example:
    epochs: int = field(default=10, metadata={"help": "passes over the training data"})
    lr: float = field(default=0.001, metadata={"help": "learning rate"})
    shuffle: bool = field(default=True, metadata={"help": "shuffle the sentences each epoch"})
    limit: int | None = field(default=None, metadata={"help": "use at most this many sentences"})
    rnn: Literal["lstm", "gru"] = field(default="lstm", metadata={"help": "recurrent cell"})
    sizes: list[int] = field(default_factory=lambda: [8, 16], metadata={"help": "batch sizes"})
    second: Literal["upos", "xpos"] | None = field(default=None, metadata={"help": "second tag set"})
    out: Path = field(default=Path("model.pt"), metadata={"help": "where to write", "metavar": "FILE"})
    workers: int = field(default=1, metadata={"help": "worker count", "type": positive})
    vocab_size: int = field(default=0, metadata={"cli": False})  # from the data: no option


@dataclass
class Undocumented:
    epochs: int = field(default=10, metadata={"help": "passes"})
    hidden_size: int = 128
    dropout: float = field(default=0.0, metadata={"help": "  "})


def parser_for(cls: type, **kwargs: object) -> ArgumentParser:
    p = ArgumentParser(prog="prog")
    add_options(p, cls, **kwargs)  # type: ignore[arg-type]
    return p


def test_types_bools_optionals_literals_lists_and_paths() -> None:
    p = parser_for(Example)
    args = p.parse_args(["--epochs", "3", "--no-shuffle", "--limit", "none", "--rnn", "gru",
                         "--sizes", "1", "2", "3", "--out", "x.pt", "--lr", "0.5"])
    config = build(Example, args)
    assert config == Example(epochs=3, lr=0.5, shuffle=False, limit=None, rnn="gru", sizes=[1, 2, 3], out=Path("x.pt"))
    assert build(Example, p.parse_args(["--limit", "7"])).limit == 7


def test_an_optional_literal_takes_none(capsys: pytest.CaptureFixture[str]) -> None:
    """`--aux-tagset none` turns a preset's second tag set off: "none"/"null" give None, a choice."""
    p = parser_for(Example)
    assert build(Example, p.parse_args(["--second", "xpos"])).second == "xpos"
    for text in ("none", "None", "null"):
        assert build(Example, p.parse_args(["--second", text])).second is None
    with pytest.raises(SystemExit):
        p.parse_args(["--second", "ner"])
    assert "invalid choice" in capsys.readouterr().err


def test_only_typed_options_are_in_the_namespace() -> None:
    args = parser_for(Example).parse_args(["--epochs", "2"])
    assert typed_values(args, Example) == {"epochs": 2}
    assert build(Example, args, lr=0.1) == Example(epochs=2, lr=0.1)


def test_help_is_the_field_text_plus_the_default() -> None:
    text = " ".join(parser_for(Example, defaults={"epochs": 4}).format_help().split())
    for line in ("--epochs N passes over the training data (default: 4)",  # the shown default
                 "--shuffle, --no-shuffle shuffle the sentences each epoch (default: True)",
                 "--rnn {lstm,gru} recurrent cell (default: lstm)",
                 "--sizes N [N ...] batch sizes (default: 8 16)",
                 "--out FILE where to write (default: model.pt)"):
        assert line in text
    assert "vocab-size" not in text


@pytest.mark.bad_input
def test_a_field_without_help_is_an_error() -> None:
    assert undocumented_fields(Undocumented) == ["hidden_size", "dropout"]
    assert undocumented_fields(Example) == []
    with pytest.raises(UndocumentedFieldError, match=r"Undocumented: field\(s\) hidden_size, dropout have no"):
        parser_for(Undocumented)
    parser_for(Undocumented, skip={"hidden_size", "dropout"})  # skipped fields need none


@pytest.mark.bad_input
def test_bad_values_and_abbreviations_are_one_line_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    p = parser_for(Example)
    for argv in (["--epochs", "many"], ["--rnn", "transformer"], ["--workers", "0"], ["--epo", "3"]):
        with pytest.raises(SystemExit) as info:
            p.parse_args(argv)
        err = capsys.readouterr().err.strip()
        assert info.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("prog: error:"), err


def test_abbreviations_are_off_even_for_a_unique_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    p = ArgumentParser(prog="prog")
    p.add_argument("--device")
    with pytest.raises(SystemExit):
        p.parse_args(["--dev", "x"])  # argparse's default would take this as --device x
    assert "unrecognized arguments: --dev" in capsys.readouterr().err


def test_shared_fields_are_added_once_and_required_and_positional_fields() -> None:
    @dataclass
    class Other:
        epochs: int = field(default=5, metadata={"help": "again"})
        model: Path = field(default=Path("."), metadata={"help": "the checkpoint"})

    @dataclass
    class Command:
        model: Path = field(metadata={"help": "the checkpoint"})
        input: str = field(default="-", metadata={"help": "input file", "positional": True})

    seen: set[str] = set()
    p = ArgumentParser(prog="prog")
    assert add_options(p, Example, seen=seen)[0] == "epochs"
    assert add_options(p, Other, seen=seen) == ["model"]
    q = ArgumentParser(prog="prog")
    add_options(q, Command)
    assert build(Command, q.parse_args(["--model", "m.pt"])) == Command(Path("m.pt"))
    assert build(Command, q.parse_args(["--model", "m.pt", "in.txt"])).input == "in.txt"

    @dataclass
    class WithPath:
        file: Path | None = field(default=None, metadata={"help": "a file", "positional": True})

    r = ArgumentParser(prog="prog")
    add_options(r, WithPath)
    assert build(WithPath, r.parse_args([])) == WithPath(None)  # not Path("==SUPPRESS==")
    assert build(WithPath, r.parse_args(["f.txt"])) == WithPath(Path("f.txt"))
    with pytest.raises(SystemExit):
        q.parse_args([])  # --model is required: its field has no default


def test_unsupported_types_are_refused() -> None:
    @dataclass
    class Bad:
        table: dict[str, int] = field(default_factory=dict, metadata={"help": "a mapping"})

    with pytest.raises(TypeError, match="cannot make an option"):
        parser_for(Bad)
    assert dataclasses.is_dataclass(Bad)


def _package_configs() -> list[type]:
    from seqtag.bench.command import BenchOptions
    from seqtag.cli import EvaluateCommand, TagCommand, TrainCommand
    from seqtag.config import TrainConfig
    from seqtag.distributed import DistConfig
    from seqtag.models import TaggerConfig
    from seqtag.transformer import TransformerConfig

    return [TrainConfig, TaggerConfig, TransformerConfig, DistConfig, BenchOptions, TrainCommand, TagCommand,
            EvaluateCommand]


@pytest.mark.parametrize("cls", _package_configs(), ids=lambda c: c.__name__)
def test_every_option_of_the_package_documents_itself(cls: type) -> None:
    """Each field that becomes a command-line option says what it does (so --help cannot drift)."""
    derived = {"vocab_size", "num_tags", "char_vocab_size"}  # sizes come from the data: never options
    assert [name for name in undocumented_fields(cls) if name not in derived] == []
