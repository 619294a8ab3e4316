#!/usr/bin/env bash
# Quick start, command 2: install what the tests need (Python packages into
# .venv; Chromium, TeX and poppler from Debian when running as root), then run
# pytest.  Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
cd "$ROOT"
bash scripts/system-deps.sh
exec "$VENV/bin/python" -m pytest -q "$@"
