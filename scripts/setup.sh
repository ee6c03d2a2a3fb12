#!/usr/bin/env bash
# Set up gnnlab from nothing: a virtualenv in .venv, torch first, then gnnlab with its C++ extension.
#
#   bash scripts/setup.sh
#
# Environment:
#   GNNLAB_VENV          virtualenv folder (default .venv)
#   GNNLAB_TORCH         pip requirement for torch (default torch==2.13.0, the CPU wheel)
#   GNNLAB_TORCH_INDEX   extra index for torch, e.g. a CUDA wheel index (GPU users; see README)
#   GNNLAB_NO_EXTENSION  1 = skip compiling gnnlab._C (the ops then use their plain-torch path)
#   GNNLAB_EXTRAS        pip extras to install (default "test")
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${GNNLAB_VENV:-.venv}
TORCH_SPEC=${GNNLAB_TORCH:-torch==2.13.0}
EXTRAS=${GNNLAB_EXTRAS:-test}
PY=${PYTHON:-python3}

start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtualenv $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

# torch goes in first: a plain `torch` requirement resolved later would pull a multi-GB CUDA build.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "[setup] installing $TORCH_SPEC"
  if [ -n "${GNNLAB_TORCH_INDEX:-}" ]; then
    "${PIP[@]}" install "$TORCH_SPEC" --index-url "$GNNLAB_TORCH_INDEX"
  else
    "${PIP[@]}" install "$TORCH_SPEC"
  fi
fi
"${PIP[@]}" install "setuptools>=68" wheel ninja

# --no-build-isolation: the extension builds against the torch installed above.
echo "[setup] installing gnnlab[$EXTRAS] and building gnnlab._C"
MAX_JOBS=${MAX_JOBS:-2} "${PIP[@]}" install --no-build-isolation -e ".[$EXTRAS]"
"$VENV/bin/python" -c "import gnnlab; print('[setup] gnnlab', gnnlab.__version__, '- ops backend:', gnnlab.ops.backend())"
echo "[setup] done in $(( $(date +%s) - start )) s"
