#!/usr/bin/env bash
# Run lint and the whole test suite; where we are root, start the single-node Slurm and OpenLava
# first and stop them afterwards (also when tests fail or the run is interrupted).
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests bench || exit 1
slurm_started=0
openlava_started=0
stop_schedulers() {
  [ "$slurm_started" = "1" ] && bash scripts/slurm-down.sh
  [ "$openlava_started" = "1" ] && bash scripts/openlava-down.sh >/dev/null
  return 0
}
trap stop_schedulers EXIT
trap 'exit 130' INT TERM
if [ -x scripts/slurm-up.sh ] && [ "$(id -u)" = "0" ]; then
  if bash scripts/slurm-up.sh; then
    slurm_started=1
    # shellcheck disable=SC1091
    . "${S2L2A_SLURM_DIR:-/tmp/s2l2a-slurm}/env"
  else echo "test: single-node Slurm did not start; Slurm tests will be skipped"; fi
fi
if [ "$(id -u)" = "0" ]; then
  # tests/integration/openlava.py reads ${S2L2A_OPENLAVA_DIR}/env itself: LSF_ENVDIR and OpenLava's
  # bsub stay out of this environment, so the other LSF tests keep their stand-ins and no lsf.conf
  openlava_started=1   # also stops what a half-finished start left running
  bash scripts/openlava-up.sh || echo "test: OpenLava did not start; OpenLava tests will be skipped"
else echo "test: not root; OpenLava tests will be skipped (root builds it and creates its submitting user)"; fi
.venv/bin/python -m pytest "$@"
