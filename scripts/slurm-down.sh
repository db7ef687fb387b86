#!/usr/bin/env bash
# Stop the test Slurm started by slurm-up.sh (daemons only; munged may be shared and is left running).
dir="${S2L2A_SLURM_DIR:-/tmp/s2l2a-slurm}"
for pidf in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
  [ -s "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null
done
pkill -x slurmd 2>/dev/null; pkill -x slurmctld 2>/dev/null
sleep 0.5
exit 0
