"""The README's troubleshooting table quotes the nodes' and tools' own words: each quoted
fragment below is in the table and in the package's source, so neither drifts unnoticed."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# What the table quotes, as the code writes it (placeholders left out); a pair where the
# code composes it: (in the table, in the code).
QUOTED = (
    "no model configured",
    "loading the model",
    ("warming the fast engine up on", "warming the {cfg.engine} engine up on"),
    "model failed to load: ",
    "stale input: ",
    "no frame yet",
    "input ahead of the clock: ",
    "incomplete input: ",
    "ego history too short",
    "no complete frame set at t0=",
    "model error: ",
    "model plan rejected: ",
    "late plan: made for t0 ",
    "(the clock jumped back)",
    "buffers, ego history and rates cleared",
    ("skipped image: ", "skipped {kind}: "),
    ("camera images are 16 to 16384 pixels", "camera images are {MIN_SIZE} to {MAX_SIZE} pixels"),
    "but the engine was warmed up on",
    "not engaged (the ~/engage service, or engage_on_start)",
    "(plan_timeout ",
    "clock stalled for ",
    "(use_sim_time and /clock stopped?)",
    "cannot place the plan: ",
    "MCAP file truncated",
    "damaged data",
    "bad configuration: ",
    ("has no parameter ", "} has no parameter {"),
    ("(did you mean ", " (did you mean {"),
    "bad arguments: ",
    ("a double parameter needs a decimal point", "a double parameter needs a decimal point"),
    "check-config",
    ("is not a topic name (", "is not a topic name ({"),
    ("camera_config ", 'f"camera_config {'),
    "no bond with a lifecycle manager: the bond messages are not installed",
    "bond with the lifecycle manager broken: ",
    ("the other side broke it", "the other side broke it"),
    ("no heartbeat from the other side for 4 s", "no heartbeat from the other side for {"),
)


def troubleshooting_section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("## Troubleshooting")
    return text[start : text.index("\n## ", start + 1)]


def source_text() -> str:
    return "\n".join(p.read_text() for p in sorted((REPO / "alpamayo_ros").rglob("*.py")))


def test_every_quoted_message_is_in_the_table_and_in_the_code():
    table, code = troubleshooting_section(), source_text()
    pairs = [q if isinstance(q, tuple) else (q, q) for q in QUOTED]
    missing_in_table = [shown for shown, _ in pairs if shown not in table]
    assert not missing_in_table, missing_in_table
    missing_in_code = [written for _, written in pairs if written not in code]
    assert not missing_in_code, missing_in_code
