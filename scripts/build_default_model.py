"""Write the built-in default model, melodex-base, into the package.

The variant (space, prompt wording, audio weighting) is the one that measured best in
``scripts/compare_zero_shot.py``; the figures are in docs/default-model.md. Re-running this
script rewrites the same folder deterministically.

    .venv/bin/python scripts/build_default_model.py
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from melodex.models.zero_shot import build_zero_shot_model  # noqa: E402

OUT = (
    Path(__file__).resolve().parents[1] / "src" / "melodex" / "weights" / "models" / "melodex-base"
)

# The chosen variant; see docs/default-model.md for the comparison that picked it.
DEFAULT_VARIANT = {
    "space": "tag",
    "prompt": "a {tag} song",
    "query_temperature": 0.03,
    "center_audio": False,
    "max_windows": 8,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    model = build_zero_shot_model(name="melodex-base", **DEFAULT_VARIANT)
    model.save(args.out)
    print(f"wrote {args.out} ({model.identity}, dim {model.dim}, {len(model.tag_names)} tags)")


if __name__ == "__main__":
    main()
