"""Settings declared once: a field's range is checked when the settings are made (the
error names the field and the value) and the command-line flag comes from the field."""

import argparse
from dataclasses import dataclass

import pytest

from alpamayo_ros.core.settings_table import (
    SettingError,
    add_setting_flags,
    check_settings,
    setting,
    settings_from_args,
)


@dataclass(frozen=True)
class Example:
    steps: int = setting(10, "steps", low=1)
    rate: float = setting(0.5, "a rate", above=0, high=1)
    clip: float = setting(0.2, "a clip", low=0, below=1)
    mode: str = setting("a", "a mode", choices=("a", "b"))
    warm: int = setting(3, "warm-up", low=0, flag="--warmup")
    keep: bool = setting(True, "drop it", flag="--drop", negate=True)
    free: bool = setting(False, "free it")

    def __post_init__(self) -> None:
        check_settings(self)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": 0}, "Example.steps must be >= 1, got 0"),
        ({"steps": 2.5}, "Example.steps must be a whole number, got 2.5"),
        ({"rate": 0.0}, "Example.rate must be > 0 and <= 1, got 0.0"),
        ({"rate": float("nan")}, "Example.rate must be a finite number, got nan"),
        ({"rate": float("inf")}, "Example.rate must be a finite number, got inf"),
        ({"rate": "0.3"}, "Example.rate must be a number, got '0.3'"),
        ({"rate": True}, "Example.rate must be a number, got True"),
        ({"clip": 1.0}, "Example.clip must be >= 0 and < 1, got 1.0"),
        ({"mode": "c"}, "Example.mode must be one of 'a', 'b', got 'c'"),
        ({"warm": -1}, "Example.warm must be >= 0, got -1"),
    ],
)
def test_a_value_outside_its_range_is_named(change, message):
    with pytest.raises(SettingError) as err:
        Example(**change)
    assert str(err.value) == message
    assert err.value.name == next(iter(change))


def test_values_inside_their_ranges_are_kept():
    e = Example(steps=1, rate=1.0, clip=0.0, mode="b", warm=0)
    assert (e.steps, e.rate, e.clip, e.mode, e.warm) == (1, 1.0, 0.0, "b", 0)


def parser_for_example() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="x")
    add_setting_flags(parser, Example, ("steps", "rate", "mode", "warm", "keep", "free"))
    return parser


def test_flags_carry_the_fields_defaults_ranges_and_names():
    parser = parser_for_example()
    args = parser.parse_args([])
    assert settings_from_args(Example, args) == Example()
    args = parser.parse_args(["--warmup", "7", "--drop", "--free", "--mode", "b", "--rate", "1"])
    assert settings_from_args(Example, args) == Example(
        warm=7, keep=False, free=True, mode="b", rate=1.0
    )
    text = parser.format_help()
    assert "--warmup WARMUP" in text and "(default 3; >= 0)" in text
    assert "(default 0.5; > 0 and <= 1)" in text
    assert "{a,b}" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--warmup", "-1"], "--warmup must be >= 0, got -1 (Example.warm)"),
        (["--rate", "nan"], "--rate must be a finite number, got nan (Example.rate)"),
        (["--steps", "0"], "--steps must be >= 1, got 0 (Example.steps)"),
    ],
)
def test_a_bad_flag_is_named_by_its_flag(argv, message):
    args = parser_for_example().parse_args(argv)
    with pytest.raises(ValueError) as err:
        settings_from_args(Example, args)
    assert str(err.value) == message
