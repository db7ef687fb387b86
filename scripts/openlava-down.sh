#!/usr/bin/env bash
# Stop the test OpenLava started by openlava-up.sh: its jobs, its daemons (by PID, through
# ../shared/openlava/STOP.sh) and what is left of the submitting user's processes. The build,
# the venv and the configuration stay, so the next start is quick.
dir="${S2L2A_OPENLAVA_DIR:-/tmp/s2l2a-openlava}"
user="${S2L2A_LSF_USER:-s2l2a-lsf}"
cd "$(dirname "$0")/.."
[ "$(id -u)" = "0" ] || { echo "openlava-down: needs root"; exit 1; }
rm -f "$dir/env"   # the tests skip at once instead of waiting for daemons that are gone
[ -d "$dir/inst" ] || exit 0
for d in "${S2L2A_OPENLAVA_SHARED:-}" ../shared/openlava shared/openlava; do
  if [ -n "$d" ] && [ -x "$d/STOP.sh" ]; then
    PREFIX="$dir/inst" OL_USER="$user" timeout 60 "$d/STOP.sh"
    exit 0
  fi
done
echo "openlava-down: no ../shared/openlava/STOP.sh; OpenLava daemons under $dir/inst may still run"
exit 1
