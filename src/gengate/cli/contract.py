"""A product route's request model turned into command-line parameters, so each product's
commands come from the contract the server is built from and cannot drift from it."""

from __future__ import annotations

import inspect
import re
import types
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer

from gengate.client import Action

__all__ = ["Field", "RESERVED", "fields_of"]

#: options every job command has; a model field of the same name is offered as --field-NAME
RESERVED = frozenset({"key", "base-url", "json", "debug", "wait", "wait-timeout",
                      "interval", "out", "count", "help", "prompts"})


@dataclass(frozen=True, slots=True)
class Field:
    """One request field as a parameter: its wire name, its function parameter (typer
    reads its annotation), and the wire values of its choices."""

    wire: str
    param: inspect.Parameter
    choices: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.param.name

    def value(self, given: Any) -> Any:
        if given is None or given == [] or given == ():
            return None
        if isinstance(given, list | tuple):
            return [self._one(g) for g in given]
        return self._one(given)

    def _one(self, given: Any) -> Any:
        if isinstance(given, Enum):
            given = given.value
        if self.choices is not None:
            return self.choices.get(str(given), given)
        return given


def _kebab(wire: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", wire)
    return spaced.replace("_", "-").lower()


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The field's item type, and whether it takes several values."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        kinds = [a for a in get_args(annotation) if a is not type(None)]
        return _unwrap(kinds[0]) if len(kinds) == 1 else (str, False)
    if origin in (list, tuple, set, frozenset):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return (_unwrap(args[0])[0] if args else str), True
    return annotation, False


def _type(wire: str, kind: Any) -> tuple[Any, dict[str, Any] | None]:
    """The parameter's type for typer (choices as an Enum of strings), and the wire value
    of each choice."""
    values: tuple[Any, ...] = ()
    if get_origin(kind) is Literal:
        values = get_args(kind)
    elif isinstance(kind, type) and issubclass(kind, Enum):
        values = tuple(m.value for m in kind)
    if values:
        choices = {str(v): v for v in values}
        return Enum(f"{wire}_choices", {k: k for k in choices}, type=str), choices
    if kind in (int, float, bool):
        return kind, None
    return str, None


def fields_of(action: Action) -> tuple[Field | None, list[Field]]:
    """The prompt argument (several prompts: several jobs), when the route takes one, and
    an option for every other field (``hookUrl`` is ``--hook-url``). A value ``@path``
    sends that file's contents (images)."""
    prompt: Field | None = None
    options: list[Field] = []
    keyword = inspect.Parameter.KEYWORD_ONLY
    for wire, info in action.fields.items():
        kind, many = _unwrap(info.annotation)
        help_text = (info.description or "").replace("\n", " ") or None
        if wire == "prompt" and kind is str and not many:
            required = info.is_required()
            annotation: Any = Annotated[list[str] if required else list[str] | None,
                                        typer.Argument(help="One job per prompt",
                                                       show_default=False)]
            prompt = Field(wire, inspect.Parameter(
                "prompts", keyword, annotation=annotation,
                **({} if required else {"default": None})))
            continue
        flag = _kebab(wire)
        if flag in RESERVED:
            flag = f"field-{flag}"
        name = flag.replace("-", "_")
        cli_type, choices = _type(name, kind)
        required = info.is_required()
        if cli_type is bool and not many:
            option = typer.Option(f"--{flag}/--no-{flag}", help=help_text, show_default=False)
            annotation = Annotated[bool | None, option]
        else:
            if many:
                help_text = f"{help_text or ''} (repeat for several)".strip()
            option = typer.Option(f"--{flag}", help=help_text, show_default=False)
            item = list[cli_type] if many else cli_type  # type: ignore[valid-type]
            annotation = Annotated[item if required else item | None, option]
        param = inspect.Parameter(name, keyword, annotation=annotation,
                                  **({} if required else {"default": None}))
        options.append(Field(wire, param, choices))
    return prompt, options
