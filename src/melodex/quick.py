"""The ``melodex`` command's entry point: a plain ``search`` is answered before the CLI loads.

Why: building the Typer application and parsing with it costs ~0.3 s (rich, typer) plus
~0.5 s (typer checks every option through a pydantic TypeAdapter) on a loaded 2-core machine,
more than the cold search itself (:mod:`melodex.library.cold_search`). This module recognises
only ``search TEXT [-k N] [--db DB] [--model M] [--json]``; anything else, or any case the cold
path declines (no current snapshot, another model, an error to report), goes to the full CLI,
which parses, validates and reports as always. ``--json`` output is the CLI's own contract
(a test compares the two byte for byte).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import threading
from typing import Any, NoReturn

VALUE_OPTIONS = {"-k": "k", "--db": "db", "--model": "model"}


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``argv`` for tests)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if quick_search(args):
        return
    from melodex.cli import main as cli_main

    cli_main(args)


def console() -> NoReturn:
    """The installed ``melodex`` command: :func:`main`, then leave without the teardown.

    Why: once torch and LanceDB are loaded, the interpreter's teardown of their modules and
    objects costs ~0.4 s after every command (``bench/bench_cli_index.py``: "from its end to
    exit"), a tenth of indexing 30 min of audio. This runs CPython's own shutdown steps that
    matter (join non-daemon threads, wake idle thread pools, atexit handlers: Ray,
    multiprocessing, logging, temporary folders), flushes stdout and stderr, and skips the
    freeing of modules and objects. So an object's finaliser does not run: a file left open for
    writing would lose its buffer. Commands commit or close everything they write before they
    return. An uncaught exception or Ctrl-C leaves the ordinary way, with its traceback.
    """
    try:
        main()
    except SystemExit as exc:
        leave(exc.code)
    leave(0)


def leave(code: object) -> NoReturn:
    """Exit with ``code`` as ``sys.exit`` would, skipping the interpreter's teardown."""
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, status 1
        sys.stderr.write(f"{code}\n")
        code = 1
    shutdown = getattr(threading, "_shutdown", None)  # what Py_FinalizeEx calls first
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # a closed pipe (| head): nothing left to tell anyone
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def parse_search(args: list[str]) -> dict[str, Any] | None:
    """The options of a plain ``search`` command line, or None for anything else."""
    if len(args) < 2 or args[0] != "search":
        return None
    found: dict[str, Any] = {"text": None, "k": "10", "db": None, "model": None, "json": False}
    seen: set[str] = set()
    rest = args[1:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        name, eq, value = arg.partition("=")
        if arg == "--json" and "json" not in seen:
            found["json"] = True
            seen.add("json")
        elif name in VALUE_OPTIONS and VALUE_OPTIONS[name] not in seen:
            if not eq:
                if i + 1 >= len(rest):
                    return None
                i += 1
                value = rest[i]
            found[VALUE_OPTIONS[name]] = value
            seen.add(VALUE_OPTIONS[name])
        elif not arg.startswith("-") and found["text"] is None:
            found["text"] = arg
        else:
            return None  # --help, --bpm, any other option: the full CLI
        i += 1
    k = found["k"]
    if found["text"] is None or not (k.isascii() and k.isdigit()) or int(k) < 1:
        return None
    found["k"] = int(k)
    return found


def quick_search(args: list[str]) -> bool:
    """Answer ``args`` when it is a plain search the cold path can answer; else False."""
    opts = parse_search(args)
    if opts is None:
        return False
    try:
        from melodex.library.cold_search import fast_search

        hits = fast_search(opts["db"], opts["text"], k=opts["k"], model=opts["model"])
    except Exception:  # noqa: BLE001 (the full CLI runs it again and reports the error)
        return False
    if hits is None:
        return False
    if opts["json"]:
        print(json_text([h.to_json() for h in hits]))
    else:
        from melodex.cli.output import print_hits

        print_hits(hits, False)
    return True


def json_text(data: Any) -> str:
    """As :func:`melodex.cli.common.json_text` (the ``--json`` contract)."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
