#!/usr/bin/env bash
# Quick start, command 1: prove the note, regenerate numeric/rnn_core.py, write
# reports/out/report.{json,html,tex,pdf}.  Options are passed to `verify`
# (see `bash scripts/verify.sh --help`).
set -euo pipefail
source "$(dirname "$0")/venv.sh"
cd "$ROOT"
exec "$VENV/bin/verify" "$@"
