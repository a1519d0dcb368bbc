"""Click options generated from a config dataclass: one option per field, its help from the field."""
from __future__ import annotations

import dataclasses
from typing import Callable

import click


def dataclass_options(cls, skip: tuple[str, ...] = (), only: tuple[str, ...] = (), base=None) -> Callable:
    """Decorator adding ``--field-name`` options for the fields of ``cls`` (all, or ``only`` those,
    less ``skip``). A field's metadata gives its ``help`` and may give its ``flag`` (the option's
    name), ``choices`` and ``min``; the defaults shown are ``base``'s (default: the class's).
    Options default to None, so that :func:`merge_options` applies only what the user gave."""

    def decorate(func):
        for f in reversed(dataclasses.fields(cls)):
            if f.name in skip or (only and f.name not in only):
                continue
            default = getattr(base, f.name) if base is not None else f.default
            flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
            help_text = f.metadata.get("help", "")
            if isinstance(default, bool):
                func = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None,
                                    help=f"{help_text} [default: {default}]")(func)
            elif isinstance(default, tuple):
                func = click.option(flag, f.name, multiple=True, help=help_text)(func)
            else:
                func = click.option(flag, f.name, type=_type(f, default), default=None,
                                    help=f"{help_text} [default: {default}]")(func)
        return func

    return decorate


def _type(f: dataclasses.Field, default):
    if "choices" in f.metadata:
        return click.Choice(f.metadata["choices"])
    if "min" in f.metadata:
        return (click.IntRange if isinstance(default, int) else click.FloatRange)(min=f.metadata["min"])
    return type(default)


def merge_options(config, options: dict):
    """Config with every option the user actually gave (not None / not empty) replacing its value."""
    given = {k: (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in options.items()
             if v is not None and v != ()}
    return dataclasses.replace(config, **given)


def pop_options(cls, options: dict) -> dict:
    """The options of ``cls``'s fields, taken out of a command's keyword arguments."""
    return {f.name: options.pop(f.name) for f in dataclasses.fields(cls) if f.name in options}
