# Sourced by scripts/serve and scripts/test: make .venv (once) and keep it in step with pyproject.toml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${TRAX_VENV:-$ROOT/.venv}"
PY=""
for cand in python3.11 python3.12 python3.13 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    PY="$cand"; break
  fi
done
[ -n "$PY" ] || { echo "trax needs Python >= 3.11 (none found on PATH)" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV with $PY" >&2
  "$PY" -m venv "$VENV"
fi
EXTRAS="${TRAX_EXTRAS:-}"
# One stamp per set of extras; an install with extras also serves a plain one (serve after test).
STAMP="$VENV/.trax-installed${EXTRAS:+-${EXTRAS//,/-}}"
WANT="$(cat pyproject.toml plugins/trax-*/pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)"
if [ -z "$EXTRAS" ]; then candidates=("$VENV"/.trax-installed*); else candidates=("$STAMP"); fi
current=0
for s in "${candidates[@]}"; do
  if [ -f "$s" ] && [ "$(cat "$s")" = "$WANT" ]; then current=1; fi
done
if [ "$current" = 0 ]; then
  echo "installing trax${EXTRAS:+[$EXTRAS]} into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
  "$VENV/bin/python" -m pip install --quiet -e ".${EXTRAS:+[$EXTRAS]}" >&2
  for plugin in plugins/trax-*/; do
    [ -f "$plugin/pyproject.toml" ] && "$VENV/bin/python" -m pip install --quiet -e "$plugin" >&2
  done
  echo "$WANT" > "$STAMP"
fi
