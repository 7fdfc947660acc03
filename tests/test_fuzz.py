"""Fuzzing with hypothesis: the manifest readers and the command line take anything.

The contracts under test: ``read_manifest`` returns valid records or raises ``MelodexError``
naming the file and each bad line (Parquet: row), never another exception; the CLI answers any
argument list with exit code 0, 1 or 2 and a message, never a traceback. Stored paths survive
the store's encoding whatever bytes a file name holds. Each test is bounded to ~100-200 cases.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer._click import core as click_core
from typer.main import get_command
from typer.testing import CliRunner

from melodex.cli import app
from melodex.data.manifest import SPLITS, TEXT_KINDS, read_manifest, validate_item
from melodex.errors import MelodexError
from melodex.library.store import decode_path, encode_path
from tests.conftest import examples

FUZZ = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _check_read(path: Path) -> None:
    """read_manifest's contract on whatever ``path`` holds."""
    try:
        items = read_manifest(path, check_audio=False)
    except MelodexError as exc:
        lines = str(exc).splitlines()
        assert str(path) in lines[0] or all(line.startswith(f"{path}:") for line in lines[1:])
        for line in lines[1:]:
            assert re.match(rf"{re.escape(str(path))}:\d+: \S", line), line
        return
    assert all(validate_item(item) == [] for item in items)


# --------------------------------------------------------------------------- JSONL manifests


@FUZZ
@given(data=st.binary(max_size=3000))
def test_jsonl_manifest_of_random_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(data)
    _check_read(path)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(SPLITS + TEXT_KINDS)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@st.composite
def manifest_items(draw: st.DrawFn) -> dict[str, Any]:
    """Objects shaped like manifest entries: each field valid, absent, or any JSON value."""
    valid: dict[str, Any] = {
        "id": draw(st.text(min_size=1, max_size=8)),
        "audio": draw(st.text(min_size=1, max_size=12)),
        "texts": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"kind": st.sampled_from(TEXT_KINDS), "text": st.text(min_size=1)}
                ),
                max_size=3,
            )
        ),
        "tags": draw(st.lists(st.sampled_from(["rock", "piano", "slow"]), max_size=3)),
        "split": draw(st.sampled_from(SPLITS)),
        "start": draw(st.none() | st.floats(0, 600)),
        "extra": draw(st.dictionaries(st.text(max_size=5), json_scalars, max_size=2)),
    }
    item = {}
    for key, value in valid.items():
        choice = draw(st.sampled_from(["valid", "valid", "valid", "absent", "random"]))
        if choice == "valid":
            item[key] = value
        elif choice == "random":
            item[key] = draw(json_values)
    return item


@FUZZ
@given(
    lines=st.lists(
        manifest_items().map(lambda d: json.dumps(d))
        | json_values.map(lambda v: json.dumps(v))
        | st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s)
        | st.just(""),
        max_size=12,
    )
)
def test_jsonl_manifest_of_random_lines(tmp_path: Path, lines: list[str]) -> None:
    """Every line is reported on its own number; the records returned are the valid lines."""
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        items = read_manifest(path, check_audio=False)
    except MelodexError as exc:
        numbers = [int(m) for m in re.findall(rf"^{re.escape(str(path))}:(\d+): ", str(exc), re.M)]
        assert numbers, str(exc)
        assert all(1 <= n <= len(lines) and lines[n - 1].strip() for n in numbers), numbers
        return
    assert len(items) == sum(1 for line in lines if line.strip())
    assert all(validate_item(item) == [] for item in items)


# --------------------------------------------------------------------------- Parquet manifests

parquet_columns = {
    "string": (pa.string(), st.none() | st.text(max_size=10) | st.sampled_from(SPLITS)),
    "int": (pa.int64(), st.none() | st.integers(-(2**63), 2**63 - 1)),
    "float": (pa.float64(), st.none() | st.floats(allow_nan=True)),
    "bool": (pa.bool_(), st.none() | st.booleans()),
    "strings": (pa.list_(pa.string()), st.none() | st.lists(st.text(max_size=6), max_size=3)),
    "texts": (
        pa.list_(pa.struct([("kind", pa.string()), ("text", pa.string())])),
        st.none()
        | st.lists(
            st.fixed_dictionaries(
                {"kind": st.none() | st.sampled_from(TEXT_KINDS), "text": st.none() | st.text()}
            ),
            max_size=3,
        ),
    ),
}
FIELDS = ["id", "audio", "texts", "tags", "split", "start", "end", "extra", "title", "other"]


@st.composite
def parquet_tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 5))
    names = draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=len(FIELDS)))
    arrays = []
    for _ in names:
        kind = draw(st.sampled_from(sorted(parquet_columns)))
        dtype, values = parquet_columns[kind]
        arrays.append(pa.array(draw(st.lists(values, min_size=n, max_size=n)), type=dtype))
    return pa.table(arrays, names=names) if names else pa.table({"x": pa.array([None] * n)})


@FUZZ
@given(table=parquet_tables(), cut=st.none() | st.floats(0.0, 1.0))
def test_parquet_manifest_of_random_tables(
    tmp_path: Path, table: pa.Table, cut: float | None
) -> None:
    """Any columns of any types, whole or cut short (a damaged file)."""
    path = tmp_path / "manifest.parquet"
    pq.write_table(table, path)
    if cut is not None:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * cut)])
    _check_read(path)


@FUZZ
@given(data=st.binary(max_size=2000))
def test_parquet_manifest_of_random_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "manifest.parquet"
    path.write_bytes(b"PAR1" + data + b"PAR1")
    _check_read(path)


# --------------------------------------------------------------------------- stored paths


@settings(max_examples=examples(300), deadline=None)
@given(raw=st.binary(min_size=1, max_size=64).filter(lambda b: b"\0" not in b))
def test_any_file_name_round_trips_through_the_store_encoding(raw: bytes) -> None:
    """File names are any bytes but NUL; stored paths must be valid UTF-8 and come back equal."""
    path = os.fsdecode(b"/music/" + raw)
    stored = encode_path(path)
    stored.encode("utf-8")
    assert decode_path(stored) == path
    assert os.fsencode(decode_path(stored)) == b"/music/" + raw


# --------------------------------------------------------------------------- the command line


def _commands() -> dict[tuple[str, ...], list[str]]:
    """Every command path of the real CLI and its option names."""
    found: dict[tuple[str, ...], list[str]] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if hasattr(command, "list_commands"):
            ctx = click_core.Context(command)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), (*path, name))
            return
        names = [o for p in command.params for o in (*p.opts, *p.secondary_opts)]
        found[path] = [n for n in names if n.startswith("-")] + ["--help"]

    walk(get_command(app), ())
    return found


COMMANDS = _commands()
# Run for real: with --db in a temporary folder and --model naming no model, each fails fast
# (or finishes) after parsing, validating options and opening the library.
RUN = {("index",), ("search",), ("similar",), ("tag",), ("describe",), ("info",)}
# Read their inputs first, which do not exist here: run for real too.
RUN_NO_MODEL = {("compare",), ("enrich",), ("data", "word2vec"), ("mine", "extract")}
# Train, render, serve, start Ray or load models before reading anything: parsing only (an
# unknown option ends every argument list: exit code 2 unless an earlier token stops them).

values = (
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=12)
    | st.sampled_from(["0", "-1", "1", "3", "1e309", "nan", "-inf", "99999999999999999999"])
    | st.sampled_from(["60-90", "90-60", "x-y", "minor", "D", "H major", "--", "-", ""])
    | st.binary(min_size=1, max_size=8)
    .filter(lambda b: b"\0" not in b)
    .map(os.fsdecode)  # non-UTF-8 argv bytes arrive as surrogate escapes
)


@st.composite
def argument_lists(draw: st.DrawFn) -> list[str]:
    path = draw(st.sampled_from(sorted(COMMANDS)))
    options = COMMANDS[path] + ["--no-such-option", "-z"]
    tokens = draw(st.lists(st.sampled_from(options) | values, max_size=8))
    if draw(st.booleans()):
        tokens.insert(0, draw(values))  # a positional argument first
    return [*path, *tokens]


@pytest.mark.heavy  # CLI subprocesses
@FUZZ
@given(args=argument_lists())
def test_cli_never_shows_a_traceback(tmp_path: Path, args: list[str]) -> None:
    runner = CliRunner()
    path = next(p for p in sorted(COMMANDS, key=len, reverse=True) if tuple(args[: len(p)]) == p)
    if path in RUN and "--ray" not in args:
        args = [*args, "--db", str(tmp_path / "db")]
        if "--model" in COMMANDS[path]:
            args += ["--model", str(tmp_path / "no-such-model")]
    elif path not in RUN_NO_MODEL:  # twice: an option left without its value takes the first
        args = [*args, "--definitely-not-an-option", "--definitely-not-an-option"]
    cwd = os.getcwd()
    os.chdir(tmp_path)  # relative paths among the arguments land here
    try:
        result = runner.invoke(app, args)
    finally:
        os.chdir(cwd)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"melodex {args!r} raised") from result.exception
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    if result.exit_code:
        assert result.output.strip(), args  # a message says what went wrong
    assert "Traceback" not in result.output


def test_cli_fuzz_reaches_every_command() -> None:
    """The argument lists above are drawn from the real command tree (no command forgotten)."""
    assert ("search",) in COMMANDS and ("mine", "extract") in COMMANDS
    assert {p for p in COMMANDS} >= RUN | RUN_NO_MODEL
    assert "--db" in COMMANDS[("index",)] and "-k" in COMMANDS[("search",)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "x", "--bpm", "abc"], "bpm"),
        (["similar", "123456789012345678901234567890"], "too large (ids are 63-bit)"),
        (["tag", "~nosuchuser0.mp3"], "~nosuchuser0.mp3: file not found"),  # a literal ~name
        (["info", "--db", "~nosuchuser0/db"], "~nosuchuser0/db: no library here"),
        (["search", "x", "--model", "~nosuchuser0/m"], "no model '~nosuchuser0/m'"),
    ],
)
def test_cli_invalid_inputs_fail_with_a_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """Cases the fuzzer found or must keep finding; ``~user`` names no user here (pathlib's
    expanduser raised RuntimeError on them: a traceback)."""
    extra = [] if "--db" in args else ["--db", str(tmp_path / "none")]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 1, result.output
    assert "error:" in result.output and message in result.output, result.output
