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
  echo "installing auditkeeper[${AUDITKEEPER_EXTRAS}] into .venv (log: .venv/install.log)"
  if ! { .venv/bin/python -m pip install --upgrade pip \
         && .venv/bin/python -m pip install -e ".[${AUDITKEEPER_EXTRAS}]"; } > .venv/install.log 2>&1; then
    tail -n 30 .venv/install.log
    echo "installation failed; the whole log is in .venv/install.log" >&2
    exit 1
  fi
  echo "$wanted" > "$stamp"
fi
