#!/usr/bin/env bash
# The main job on the bundled real sample: plan + run with the built-in processor, then show status.
set -euo pipefail
cd "$(dirname "$0")/.."
S=.venv/bin/s2l2a
C=demo-campaign
$S init "$C" --processor builtin
$S plan "$C" data/sample
$S run "$C"
$S status "$C"
