#!/usr/bin/env bash
# Quick start, command 2: install what the tests need (Python packages into
# .venv; Chromium, TeX and poppler from Debian when running as root), then run
# pytest.  Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
cd "$ROOT"
# Without root the Debian tools cannot be installed here: the browser and TeX
# tests then skip themselves (in CI, where CI is set, they fail instead).
bash scripts/system-deps.sh || echo "test.sh: continuing without the missing system tools" >&2
exec "$VENV/bin/python" -m pytest -q "$@"
