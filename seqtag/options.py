"""Command-line options generated from dataclasses: one helper for every command.

A configuration dataclass documents each field once, in its metadata::

    @dataclass
    class TrainConfig:
        epochs: int = field(default=10, metadata={"help": "passes over the training data"})

and :func:`add_options` turns every field into an ``argparse`` option whose help line is that
text plus the default (``--epochs N  passes over the training data (default: 10)``). The help
cannot drift from the code because there is no second copy of it: a field without
``metadata["help"]`` is an error (:class:`UndocumentedFieldError`), so a test that builds the
parsers fails the moment someone adds a field and forgets to say what it does.

Types map to options as follows:

=====================================  ===============================================
field type                             option
=====================================  ===============================================
``int``, ``float``, ``str``, ``Path``  ``--name VALUE`` converted to the type
``bool``                               ``--name`` / ``--no-name``
``X | None``                           as ``X``; the words ``none``/``null`` give ``None``
``Literal["a", "b"]``                  ``--name {a,b}``
``list[X]`` / ``tuple[X, ...]``        ``--name V [V ...]`` (one or more values)
=====================================  ===============================================

Optional metadata keys besides ``help``: ``metavar``; ``type`` (a converter that replaces the
one derived from the annotation, e.g. one that rejects negatives); ``positional=True`` (an
argument without ``--``, optional when the field has a default); ``const`` (the value of the
option given without a value: ``--test`` alone vs ``--test FILE``); ``show_default=False``
(the help says itself what happens by default); ``cli=False`` (not an option: sizes that come
from the data, for example).

Defaults are *suppressed*: the namespace holds only what the user typed, so the caller can layer
``dataclass defaults < preset < typed options`` (:func:`typed_values`, :func:`build`).

Every parser of the package is an :class:`ArgumentParser` from here: abbreviations are off
(``--dev`` must never be taken for ``--device``), and a usage error is one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "ArgumentParser",
    "UndocumentedFieldError",
    "add_options",
    "build",
    "field_help",
    "typed_values",
    "undocumented_fields",
]

EXIT_USAGE = 2


class UndocumentedFieldError(TypeError):
    """A dataclass field meant to become an option has no ``metadata={"help": ...}``."""


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with abbreviations off and one-line usage errors (exit 2).

    ``allow_abbrev`` defaults to ``False`` (argparse's default, ``True``, silently accepts a
    prefix of a longer option: ``train --dev FILE`` would set ``--device``). Sub-parsers made
    with ``add_subparsers(parser_class=ArgumentParser)`` inherit both behaviours.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _is_option(f: dataclasses.Field[Any]) -> bool:
    return f.init and f.metadata.get("cli", True) is not False


def field_help(cls: type, name: str) -> str:
    """The documented help of field ``name`` of dataclass ``cls``.

    Raises:
        UndocumentedFieldError: the field has no non-empty ``metadata["help"]``.
    """
    for f in dataclasses.fields(cls):
        if f.name == name:
            text = f.metadata.get("help")
            if not isinstance(text, str) or not text.strip():
                raise UndocumentedFieldError(
                    f"{cls.__module__}.{cls.__qualname__}.{name} has no help: declare it as "
                    f'field(default=..., metadata={{"help": "what it does and what values it takes"}})'
                )
            return " ".join(text.split())
    raise KeyError(f"{cls.__qualname__} has no field {name!r}")


def undocumented_fields(cls: type) -> list[str]:
    """Names of the fields of ``cls`` that would become options but have no help (should be ``[]``)."""
    missing = []
    for f in dataclasses.fields(cls):
        if not _is_option(f):
            continue
        try:
            field_help(cls, f.name)
        except UndocumentedFieldError:
            missing.append(f.name)
    return missing


def _default_of(f: dataclasses.Field[Any], defaults: dict[str, Any]) -> Any:
    if f.name in defaults:
        return defaults[f.name]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value) or "none"
    return str(value)


_METAVARS: dict[Any, str] = {int: "N", float: "X", Path: "PATH"}


def _nullable(convert: Any) -> Any:
    def parse(text: str) -> Any:
        return None if text.strip().lower() in ("none", "null") else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names it in its errors
    parse.base = convert  # type: ignore[attr-defined]
    return parse


def _strip_optional(kind: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(kind)) == 2:
            return args[0], True
        raise TypeError(f"cannot make an option of the union {kind}")
    return kind, False


def _literal_converter(values: tuple[Any, ...]) -> Any:
    kinds = {type(v) for v in values}
    if len(kinds) != 1 or kinds <= {str}:
        return str
    return kinds.pop()


def _option_kwargs(cls: type, f: dataclasses.Field[Any], kind: Any) -> dict[str, Any]:
    """The ``add_argument`` keywords (type, choices, nargs, action) for a field's annotation."""
    base, optional = _strip_optional(kind)
    kwargs: dict[str, Any] = {}
    origin = typing.get_origin(base)
    if origin in (list, tuple):
        items = typing.get_args(base)
        if origin is tuple and (len(items) != 2 or items[1] is not Ellipsis):
            raise TypeError(f"{cls.__qualname__}.{f.name}: only tuple[X, ...] can be an option")
        base, kwargs["nargs"] = items[0], "+"
        origin = typing.get_origin(base)
    if base is bool and "nargs" not in kwargs:
        return {"action": argparse.BooleanOptionalAction}
    if origin is typing.Literal:
        values = typing.get_args(base)
        # An optional Literal also takes "none"/"null" (its converter gives None, which must be a choice).
        kwargs["choices"], convert = ((*values, None) if optional else values), _literal_converter(values)
    elif base in (int, float, str, Path):
        convert = base
    else:
        raise TypeError(f"{cls.__qualname__}.{f.name}: cannot make an option of type {base!r}")
    convert = f.metadata.get("type", convert)
    kwargs["type"] = _nullable(convert) if optional else convert
    return kwargs


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    skip: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
    seen: set[str] | None = None,
) -> list[str]:
    """Add one option per field of dataclass ``cls`` to ``parser`` (or an argument group).

    Args:
        parser: where the options go.
        cls: a dataclass whose fields carry ``metadata={"help": ...}``.
        skip: field names not to add (the caller adds them itself, or they are not options).
        defaults: defaults to *show* in the help instead of the dataclass's own (e.g. a preset's
            values); the namespace still holds only what the user typed.
        seen: names already added by an earlier call; shared names are added once, and the
            names added here are put into it (for two dataclasses with a common field).

    Returns:
        The destinations added (field names), in field order.

    Raises:
        UndocumentedFieldError: a field without help (listing every such field).
        TypeError: a field whose type has no option form (e.g. ``dict``).
    """
    defaults = defaults or {}
    skipped = set(skip) | (seen if seen is not None else set())
    chosen = [f for f in dataclasses.fields(cls) if _is_option(f) and f.name not in skipped]
    missing = [f.name for f in chosen if f.name in undocumented_fields(cls)]
    if missing:
        raise UndocumentedFieldError(
            f"{cls.__module__}.{cls.__qualname__}: field(s) {', '.join(missing)} have no "
            'metadata={"help": ...}; every option says what it does'
        )
    hints = typing.get_type_hints(cls)
    added = []
    for f in chosen:
        kwargs = _option_kwargs(cls, f, hints[f.name])
        default = _default_of(f, defaults)
        text = field_help(cls, f.name)
        if default is not dataclasses.MISSING and f.metadata.get("show_default", True):
            text += f" (default: {_show(default)})"
        kwargs["help"] = text.replace("%", "%%")
        if "action" not in kwargs:
            kwargs["metavar"] = f.metadata.get("metavar", _METAVARS.get(getattr(kwargs["type"], "base", kwargs["type"]), f.name.upper()))
        if "choices" in kwargs and "metavar" not in f.metadata:
            kwargs.pop("metavar")
        if "const" in f.metadata:
            kwargs.update(nargs="?", const=f.metadata["const"])
        if f.metadata.get("positional"):
            if default is not dataclasses.MISSING:
                kwargs["nargs"] = "?" if kwargs.get("nargs") != "+" else "*"
            # A positional's default is converted by argparse like a typed value (SUPPRESS would
            # become Path("==SUPPRESS==")), so it gets the real default.
            parser.add_argument(f.name, **kwargs, **({} if default is dataclasses.MISSING else {"default": default}))
        else:
            flag = "--" + f.name.replace("_", "-")
            required = default is dataclasses.MISSING
            parser.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, required=required, **kwargs)
        added.append(f.name)
        if seen is not None:
            seen.add(f.name)
    return added


def typed_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` that the user typed (defaults are suppressed, so absent ones are missing)."""
    given = vars(args)
    return {f.name: given[f.name] for f in dataclasses.fields(cls) if f.name in given}


def build(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """``cls(**defaults, **typed options, **overrides)``: the dataclass the command line describes."""
    return cls(**{**typed_values(args, cls), **overrides})
