#!/usr/bin/env bash
# Install the system tools the report tests use: Chromium (browser test),
# pdflatex/latexmk (PDF report), pdftotext (PDF test), and Latin Modern Math
# (the font the HTML asks for math). Idempotent: a no-op when all are present,
# so CI and developers can run it on every build.
set -euo pipefail

# tool to check -> Debian package that provides it
declare -A NEED=(
  [chromium]=chromium
  [pdflatex]="texlive-latex-base texlive-latex-recommended"
  [latexmk]=latexmk
  [pdftotext]=poppler-utils
)

missing=()
for tool in "${!NEED[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=(${NEED[$tool]})
done
# A font is no command: ask fontconfig, or look for the file if fc-list is absent.
if ! { fc-list 2>/dev/null | grep -qi "Latin Modern Math"; } \
   && [ ! -e /usr/share/texmf/fonts/opentype/public/lm-math/latinmodern-math.otf ]; then
  missing+=(fonts-lmodern)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
# Deduplicate, keep a stable order for readable output.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing ${missing[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "system-deps: missing packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
