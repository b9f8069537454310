# Sourced by scripts/demo and scripts/test: create or reuse .venv and install the
# project with the extras given in $AUDITKEEPER_EXTRAS, only when pyproject.toml changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=".venv/.auditkeeper-${AUDITKEEPER_EXTRAS//,/-}"
wanted="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[${AUDITKEEPER_EXTRAS}]"
  echo "$wanted" > "$stamp"
fi
