#!/usr/bin/env bash
# Start a real single-node OpenLava (the open-source LSF lineage) for the LSF tests (root only).
#
# ../shared/openlava/BUILD.sh builds and starts it; that folder is read-only, so everything
# it writes goes under $S2L2A_OPENLAVA_DIR (default /tmp/s2l2a-openlava), outside the repository:
#   src/      the source tree, built in place once (cached; rebuilt only when the tarball or
#             BUILD.sh change, or a build was cut short)
#   inst/     PREFIX: binaries, cluster configuration, daemon logs
#   venv/     a venv from Debian's /usr/bin/python3 with s2l2a installed: jobs run as the
#             submitting user (root cannot submit), who cannot run root's pyenv interpreter
#   project/  a copy of the repository's src/ the user can read (installed editable into venv/),
#             refreshed on every start so jobs run the code under test
#   work/     owned by the submitting user: the LSF tests' campaigns (emptied on every start)
#   env       LSF_ENVDIR, PATH and the user for a shell or the tests (tests/integration/openlava.py);
#             written once the cluster is up, removed by openlava-down.sh
# A second start only restarts the daemons and refreshes project/ (about 15 s).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${S2L2A_OPENLAVA_DIR:-/tmp/s2l2a-openlava}"
user="${S2L2A_LSF_USER:-s2l2a-lsf}"
clean_period="${S2L2A_OPENLAVA_CLEAN_PERIOD:-60}"   # seconds finished jobs stay in bjobs
build_timeout="${S2L2A_OPENLAVA_BUILD_TIMEOUT:-600}"
[ "$(id -u)" = "0" ] || { echo "openlava-up: needs root (it creates users and starts daemons)"; exit 1; }
shared=""
for d in "${S2L2A_OPENLAVA_SHARED:-}" ../shared/openlava shared/openlava; do
  if [ -n "$d" ] && [ -x "$d/BUILD.sh" ] && [ -f "$d/openlava-4.0dev4-src.tar.gz" ]; then shared=$(cd "$d" && pwd); break; fi
done
[ -n "$shared" ] || { echo "openlava-up: no ../shared/openlava/BUILD.sh (set S2L2A_OPENLAVA_SHARED)"; exit 1; }
[[ "$dir" =~ ^/[^/[:space:]]+/[^[:space:]]+$ ]] || { echo "openlava-up: S2L2A_OPENLAVA_DIR must be an absolute path, two levels deep or more, without spaces"; exit 1; }
[[ "$user" =~ ^[a-z_][a-z0-9_-]*$ ]] || { echo "openlava-up: S2L2A_LSF_USER $user is not a plain user name"; exit 1; }
[[ "$clean_period" =~ ^[0-9]+$ ]] || { echo "openlava-up: S2L2A_OPENLAVA_CLEAN_PERIOD must be seconds"; exit 1; }

t0=$(date +%s)
umask 022
mkdir -p "$dir"
chmod 755 "$dir"
src="$dir/src" prefix="$dir/inst" venv="$dir/venv"
rm -f "$dir/env"   # written last: its presence tells the tests the cluster is up
export LSF_ENVDIR="$prefix/etc"

# -- 1. build (cached) and start: BUILD.sh skips the build when $prefix/sbin/mbatchd exists
key=$(cat "$shared/openlava-4.0dev4-src.tar.gz" "$shared/BUILD.sh" | sha256sum | cut -c1-16)
stamp="$prefix/.s2l2a-built"
if [ -d "$prefix" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$key" ]; then
  echo "openlava-up: source or BUILD.sh changed, or an earlier build was cut short: rebuilding"
  PREFIX="$prefix" OL_USER="$user" "$shared/STOP.sh" >/dev/null 2>&1 || true
  rm -rf "$src" "$prefix"
fi
if [ -f "$stamp" ]; then
  # a clean slate: no jobs of an earlier session replayed from lsb.events (their folders are gone)
  PREFIX="$prefix" OL_USER="$user" timeout 60 "$shared/STOP.sh" >/dev/null 2>&1 || true
  rm -rf "$prefix/work"
else echo "openlava-up: building OpenLava under $dir (once; about a minute)"; fi
rc=0
SRC="$src" PREFIX="$prefix" OL_USER="$user" MEMLIMIT_ENFORCE=y CLEAN_PERIOD="$clean_period" \
  timeout "$build_timeout" "$shared/BUILD.sh" >"$dir/build.log" 2>&1 || rc=$?
# the build is complete once BUILD.sh starts the daemons, whether or not they come up
grep -q "starting lim" "$dir/build.log" && echo "$key" > "$stamp"
if [ "$rc" != 0 ]; then
  echo "openlava-up: BUILD.sh failed (exit $rc; 124 = ran past ${build_timeout}s); last lines of $dir/build.log:"
  tail -15 "$dir/build.log"; exit 1
fi
t_build=$(( $(date +%s) - t0 ))

# -- 2. site settings BUILD.sh does not write: bsub -x needs a queue with EXCLUSIVE = Y (as on
# LSF); the default queue gets it, "short" stays without (a refusal to test). mbatchd rereads.
if ! grep -q "EXCLUSIVE" "$LSF_ENVDIR/lsb.queues"; then
  sed -i '/^QUEUE_NAME *= *normal$/a EXCLUSIVE    = Y' "$LSF_ENVDIR/lsb.queues"
fi
admin="$prefix/bin/badmin"
runuser -u openlava -- env LSF_ENVDIR="$LSF_ENVDIR" timeout 60 "$admin" reconfig -f >"$dir/reconfig.log" 2>&1 \
  || { echo "openlava-up: badmin reconfig failed:"; tail -5 "$dir/reconfig.log"; exit 1; }
ready=0
for _ in $(seq 1 60); do   # mbatchd restarts to reread: wait until it answers with the new queue
  if "$prefix/bin/bqueues" -l normal 2>/dev/null | grep -q "POLICIES:.*EXCLUSIVE"; then ready=1; break; fi
  sleep 1
done
[ "$ready" = 1 ] || { echo "openlava-up: mbatchd did not come back after badmin reconfig; see $prefix/log"; exit 1; }

# -- 3. the submitting user's Python: Debian's interpreter in a world-readable venv
if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
  echo "openlava-up: installing Debian's python3-venv"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
fi
/usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "openlava-up: /usr/bin/python3 is older than the project's 3.11"; exit 1; }
mkdir -p "$dir/project"
rm -rf "$dir/project/src.new"
cp -r src "$dir/project/src.new"
find "$dir/project/src.new" -name __pycache__ -prune -exec rm -rf {} +
rm -rf "$dir/project/src"
mv "$dir/project/src.new" "$dir/project/src"
cp pyproject.toml README.md "$dir/project/"
# reinstall only when [project] changes (dependencies, extras, scripts), not for a pytest setting
pkey=$(/usr/bin/python3 -c 'import hashlib, json, tomllib, sys; d = tomllib.load(open("pyproject.toml", "rb"))["project"]; print(hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16])')
if [ "$(cat "$venv/.s2l2a-installed" 2>/dev/null)" != "$pkey" ]; then
  echo "openlava-up: installing s2l2a into $venv (Debian's $(/usr/bin/python3 -V))"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  if ! timeout 900 "$venv/bin/python" -m pip install -q -e "$dir/project[fast]" >"$dir/pip.log" 2>&1; then
    echo "openlava-up: pip install failed; last lines of $dir/pip.log:"; tail -5 "$dir/pip.log"; exit 1
  fi
  chmod -R a+rX "$venv"
  echo "$pkey" > "$venv/.s2l2a-installed"
fi
# the test plug-ins (the noop processor the campaign tests run), from a fresh copy as src/ above
rm -rf "$dir/project/plugins"
mkdir -p "$dir/project/plugins"
cp -r tests/plugins/pyproject.toml tests/plugins/s2l2a_testplugins "$dir/project/plugins/"
find "$dir/project/plugins" -name __pycache__ -prune -exec rm -rf {} +
if ! "$venv/bin/python" -c 'import s2l2a_testplugins' 2>/dev/null; then
  if ! timeout 300 "$venv/bin/python" -m pip install -q --no-deps \
       -e "$dir/project/plugins" >>"$dir/pip.log" 2>&1; then
    echo "openlava-up: installing the test plug-ins failed; last lines of $dir/pip.log:"; tail -5 "$dir/pip.log"; exit 1
  fi
fi
# compiled here as root: the user cannot write __pycache__ into the copy
"$venv/bin/python" -m compileall -q "$dir/project/src" "$dir/project/plugins" >/dev/null
chmod -R a+rX "$dir/project"
runuser -u "$user" -- "$venv/bin/python" -c 'import s2l2a.engines.lsf' \
  || { echo "openlava-up: $user cannot import s2l2a from $venv"; exit 1; }

# -- 4. a folder the user owns for campaigns, and the env file
rm -rf "$dir/work"
install -d -o "$user" -g "$user" -m 755 "$dir/work"
cat > "$dir/env" <<ENV
export LSF_ENVDIR=$LSF_ENVDIR
export PATH=$prefix/bin:\$PATH
export S2L2A_LSF_USER=$user
export S2L2A_LSF_PYTHON=$venv/bin/python
export S2L2A_LSF_WORK=$dir/work
export S2L2A_LSF_CLEAN_PERIOD=$clean_period
ENV
echo "openlava-up: OpenLava ready ($(runuser -u "$user" -- env LSF_ENVDIR="$LSF_ENVDIR" "$prefix/bin/lsid" | head -1)," \
     "user $user, CLEAN_PERIOD ${clean_period}s) at $dir in $(( $(date +%s) - t0 ))s (BUILD.sh ${t_build}s)"
