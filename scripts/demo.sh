#!/usr/bin/env bash
# The main job on the bundled real sample: plan + run with the built-in processor, derive NDVI + SCL,
# write the campaign report, then say where the L2A is. Starts from a fresh demo-campaign each time.
set -euo pipefail
cd "$(dirname "$0")/.."
S=.venv/bin/s2l2a
C=demo-campaign
rm -rf "$C"
$S init "$C" --processor builtin
$S plan "$C" data/sample
$S run "$C" --derive ndvi
$S status "$C"
$S report "$C" -o "$C/report.html"
echo
for p in "$C"/L2A/*/*.SAFE; do echo "L2A product: $(cd "$(dirname "$p")" && pwd)/$(basename "$p")"; done
for d in "$C"/derived/*/*; do echo "NDVI + SCL:  $(cd "$d" && pwd)"; done
echo "report:      $(pwd)/$C/report.html"
