"""The ``melodex`` command line: thin doors onto the library and lab APIs.

Library code raises; the commands print and set exit codes. ``--json`` output follows the
contract documented in the README (keys are stable). One module per group:
:mod:`~melodex.cli.library` (index, search, similar, tag, describe, info, models, demo,
serve), :mod:`~melodex.cli.lab` (train, finetune, fit-baseline, evaluate, compare),
:mod:`~melodex.cli.data` (data demo/word2vec, filter, enrich), :mod:`~melodex.cli.mining`,
:mod:`~melodex.cli.curate` (duplicates, playlist, path, highlight).
"""

from __future__ import annotations

import importlib
import re
import sys

from melodex.cli.app import app

for _group in (
    "library",
    "curate",
    "lab",
    "data",
    "mining",
):  # each registers its commands, in this order
    importlib.import_module(f"melodex.cli.{_group}")

__all__ = ["app", "main", "optional_ray_address"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point; ``argv`` lets tests run the CLI in-process."""
    args = list(argv if argv is not None else sys.argv[1:])
    app(args=optional_ray_address(args), prog_name="melodex")


_RAY_ADDRESS = re.compile(r"^(auto|local|ray://\S+|[\w.-]+:\d+)$")


def optional_ray_address(args: list[str]) -> list[str]:
    """Let `--ray` take an optional value: a bare `--ray` means a local cluster.

    Click options cannot have optional values, so a `--ray` not followed by something that
    looks like a Ray address (auto, local, host:port, ray://...) becomes `--ray local`.
    """
    out: list[str] = []
    for i, arg in enumerate(args):
        out.append(arg)
        if arg == "--ray" and (i + 1 == len(args) or not _RAY_ADDRESS.match(args[i + 1])):
            out.append("local")
    return out
