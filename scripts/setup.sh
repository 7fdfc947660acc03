#!/usr/bin/env bash
# Set up everything melodex needs on a fresh Debian machine; safe to run again (it skips what is done).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(ffmpeg fluidsynth fluid-soundfont-gm chromium)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.melodex-installed
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages (torch CPU first)"
  .venv/bin/pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  # torch first, pinned: this wheel is the CPU build; an unpinned torch pulls a multi-GB CUDA build.
  .venv/bin/pip install -q torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/pip install -q -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import melodex, torch, lancedb, sentence_transformers" 
  echo "$want" > "$stamp"
fi

# The musicnn==0.1.0 release wheel (29 MB, sha256-pinned): the tests check that the weights
# melodex ships are exactly what scripts/convert_musicnn_weights.py makes from it.
WHEEL_DIR=.cache/musicnn-wheel
WHEEL=$WHEEL_DIR/musicnn-0.1.0-py3-none-any.whl
WHEEL_SHA256=f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa
if [ ! -f "$WHEEL" ] || [ "$(sha256sum "$WHEEL" | cut -c1-64)" != "$WHEEL_SHA256" ]; then
  echo "setup: fetching the musicnn 0.1.0 release wheel into $WHEEL_DIR"
  rm -f "$WHEEL"
  .venv/bin/pip download -q --no-deps --only-binary=:all: -d "$WHEEL_DIR" musicnn==0.1.0 2>&1 \
    | grep -v "^WARNING: Location" || true
  if [ "$(sha256sum "$WHEEL" | cut -c1-64)" != "$WHEEL_SHA256" ]; then
    echo "setup: $WHEEL does not have the pinned sha256 $WHEEL_SHA256" >&2
    exit 1
  fi
fi
