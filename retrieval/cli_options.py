"""Click options generated from a config dataclass: one option per field, its help from the field."""
from __future__ import annotations

import dataclasses
from typing import Callable

import click


def dataclass_options(cls, skip: tuple[str, ...] = ()) -> Callable:
    """Decorator adding ``--field-name`` options for every field of ``cls`` (defaults shown)."""

    def decorate(func):
        for f in reversed(dataclasses.fields(cls)):
            if f.name in skip:
                continue
            flag = "--" + f.name.replace("_", "-")
            help_text = f.metadata.get("help", "")
            if isinstance(f.default, bool):
                func = click.option(f"{flag}/--no-{f.name.replace('_', '-')}", f.name, default=None,
                                    help=f"{help_text} [default: {f.default}]")(func)
            elif isinstance(f.default, tuple):
                func = click.option(flag, f.name, multiple=True, help=help_text)(func)
            else:
                func = click.option(flag, f.name, type=type(f.default), default=None,
                                    help=f"{help_text} [default: {f.default}]")(func)
        return func

    return decorate


def merge_options(config, options: dict):
    """Config with every option the user actually gave (not None / not empty) replacing its value."""
    given = {k: (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in options.items()
             if v is not None and v != ()}
    return dataclasses.replace(config, **given)
