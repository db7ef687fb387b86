#!/usr/bin/env bash
# Create .venv and install s2l2a with its test extras; as root also the Debian packages the tests need.
# The test extras also install tests/plugins (editable): the test-only plug-ins (the noop processor, a toy
# scheduler) that register through s2l2a's entry points like a third-party package would.
# Idempotent: a stamp file skips the work when neither pyproject.toml has changed.
set -euo pipefail
cd "$(dirname "$0")/.."
want="${1:-test}"   # extras to install: test | base
stamp=".venv/.installed-$want"
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  pkgs=(libgfortran5)
  [ "$want" = "test" ] && pkgs+=(slurmctld slurmd slurm-client munge makeself chromium gdal-bin)
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt tests/plugins/pyproject.toml ]; then exit 0; fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "$want" = "test" ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
  .venv/bin/python -m pip install -q --no-deps -e tests/plugins
else
  .venv/bin/python -m pip install -q -e ".[lutgen,fast]"
fi
touch "$stamp"
