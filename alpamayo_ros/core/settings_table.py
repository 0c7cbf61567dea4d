"""Settings dataclasses declared once: each field with its default, range and description,
checked when the settings are made (the error names the field and the value), and the
command-line flags derived from the same fields.

    @dataclass(frozen=True)
    class TrainSettings:
        steps: int = setting(1000, "optimiser steps", low=1)
        def __post_init__(self) -> None:
            check_settings(self)

Numbers must be finite and inside their range; `choices` bound strings. `flag` names the
command-line flag where it is not the field's name (`--warmup` for warmup_steps); a bool
field is a store_true flag, or with `negate` a store_false one (`--fm-into-vlm` clears
insulate_vlm).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, Field, field, fields
from typing import Any


class SettingError(ValueError):
    """A setting outside its range; `name` is the field."""

    def __init__(self, owner: str, name: str, problem: str) -> None:
        super().__init__(f"{owner}.{name} {problem}")
        self.owner, self.name, self.problem = owner, name, problem


def setting(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    below: float | None = None,
    choices: tuple[str, ...] = (),
    flag: str | None = None,
    negate: bool = False,
) -> Any:
    """A dataclass field: `default`, its description `help`, and its range: low <= value <=
    high, above < value < below (each bound optional), or one of `choices`."""
    meta = {
        "help": help, "low": low, "high": high, "above": above, "below": below,
        "choices": choices, "flag": flag, "negate": negate,
    }  # fmt: skip
    return field(default=default, metadata={"setting": meta})


def _spec(f: Field) -> dict[str, Any] | None:
    return f.metadata.get("setting")


def bound_text(x: float) -> str:
    """A bound as written: 100 not 100.0, 2147483647 not 2.14748e+09, 0.01 as is."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _range_text(spec: dict[str, Any]) -> str:
    bounds = ((">=", spec["low"]), (">", spec["above"]), ("<=", spec["high"]), ("<", spec["below"]))
    return " and ".join(f"{op} {bound_text(x)}" for op, x in bounds if x is not None)


def check_settings(settings: Any) -> None:
    """SettingError for the first field of `settings` outside its declared range."""
    owner = type(settings).__name__
    for f in fields(settings):
        spec = _spec(f)
        if spec is None:
            continue
        value = getattr(settings, f.name)
        kind = type(f.default) if f.default is not MISSING else None
        if spec["choices"]:
            if value not in spec["choices"]:
                options = ", ".join(repr(c) for c in spec["choices"])
                raise SettingError(owner, f.name, f"must be one of {options}, got {value!r}")
            continue
        if kind is bool or kind is None or kind is str:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingError(owner, f.name, f"must be a number, got {value!r}")
        if kind is int and not isinstance(value, int):
            raise SettingError(owner, f.name, f"must be a whole number, got {value!r}")
        if not math.isfinite(value):
            raise SettingError(owner, f.name, f"must be a finite number, got {value}")
        low, high, above, below = spec["low"], spec["high"], spec["above"], spec["below"]
        if (
            (low is not None and value < low)
            or (high is not None and value > high)
            or (above is not None and value <= above)
            or (below is not None and value >= below)
        ):
            raise SettingError(owner, f.name, f"must be {_range_text(spec)}, got {value}")


def flag_of(f: Field) -> str:
    spec = _spec(f) or {}
    return spec.get("flag") or "--" + f.name.replace("_", "-")


def add_setting_flags(
    parser: argparse.ArgumentParser, cls: type, names: tuple[str, ...], defaults: dict | None = None
) -> None:
    """Flags for the fields `names` of the settings class `cls`: type, default (or
    `defaults`' value), help with the range, all from the fields' declarations."""
    by_name = {f.name: f for f in fields(cls)}
    for name in names:
        f = by_name[name]
        spec = _spec(f)
        assert spec is not None, f"{cls.__name__}.{name} is not declared with setting()"
        default = (defaults or {}).get(name, f.default)
        text = spec["help"]
        if isinstance(default, bool):
            action = "store_false" if spec["negate"] else "store_true"
            parser.add_argument(flag_of(f), dest=name, action=action, default=default, help=text)
            continue
        bounds = _range_text(spec)
        text = f"{text} (default {default}{'; ' + bounds if bounds else ''})"
        kind: dict[str, Any] = {"choices": spec["choices"]}
        if not spec["choices"]:
            kind = {
                "type": type(default),
                "metavar": flag_of(f).lstrip("-").replace("-", "_").upper(),
            }
        parser.add_argument(flag_of(f), dest=name, default=default, help=text, **kind)


def settings_from_args(cls: type, args: argparse.Namespace, **given: Any) -> Any:
    """`cls` made from the parsed flags of its fields (those add_setting_flags added) and
    `given`; a value outside its range is named by its flag."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    try:
        return cls(**(values | given))
    except SettingError as err:
        f = {f.name: f for f in fields(cls)}[err.name]
        if not hasattr(args, err.name):
            raise
        raise ValueError(f"{flag_of(f)} {err.problem} ({err.owner}.{err.name})") from err
