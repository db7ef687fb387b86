#!/usr/bin/env bash
# Run lint and the whole test suite; start (and stop) the single-node Slurm where we are root.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests bench || exit 1
slurm_started=0
if [ -x scripts/slurm-up.sh ] && [ "$(id -u)" = "0" ]; then
  if bash scripts/slurm-up.sh; then
    slurm_started=1
    # shellcheck disable=SC1091
    . "${S2L2A_SLURM_DIR:-/tmp/s2l2a-slurm}/env"
  else echo "test: single-node Slurm did not start; Slurm tests will be skipped"; fi
fi
.venv/bin/python -m pytest "$@"
rc=$?
[ "$slurm_started" = "1" ] && bash scripts/slurm-down.sh
exit $rc
