#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv: PyTorch, then ddpm_core with its extras.
# Idempotent and quick when nothing changed (a stamp holds the hash of pyproject.toml).
#   DDPM_TORCH        the torch requirement to install when .venv has none (default: torch==2.13.0, the CPU
#                     build that these machines hold on disk; elsewhere any torch >= 2.2 works)
#   DDPM_TORCH_INDEX  an index URL for it, e.g. https://download.pytorch.org/whl/cpu
#   PYTHON            the interpreter that creates the venv (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PY --version)"
    "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    spec=${DDPM_TORCH:-torch==2.13.0}
    echo "setup: installing $spec"
    if [ -n "${DDPM_TORCH_INDEX:-}" ]; then
        .venv/bin/python -m pip install -q "$spec" --index-url "$DDPM_TORCH_INDEX"
    else
        .venv/bin/python -m pip install -q "$spec"
    fi
fi
stamp=.venv/.ddpm-core-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing ddpm_core (editable) with extras [book,test]"
    .venv/bin/python -m pip install -q -e ".[book,test]"
    echo "$want" > "$stamp"
fi
.venv/bin/python -c "import ddpm_core, torch; print(f'setup: ddpm_core {ddpm_core.__version__}, torch {torch.__version__}')"
