#!/usr/bin/env bash
# Build gnnlab._C with AddressSanitizer + UndefinedBehaviorSanitizer and run tests/ops under them.
#
#   bash scripts/sanitize.sh                    # build, then pytest tests/ops
#   bash scripts/sanitize.sh -k aggregate -x    # extra arguments go to pytest
#
# Time on 2 CPU cores (MAX_JOBS=1, gcc 12, torch 2.13 CPU): the sanitized build takes about 2.5 min
# from scratch on an idle machine (8 min while another compile shared the cores); a rerun with
# unchanged sources only relinks (about 5 s). tests/ops (374 tests) takes about 3 min under the
# sanitizers (4 min with the cores shared), against 2.6 min with the normal -O3 build (whose own
# compile takes about 4 min): most of the time is the plain-torch reference and hypothesis, not the
# kernels. About 6 min in all from scratch.
#
# The build REPLACES the in-place extension gnnlab/_C.so of this checkout with the sanitized one
# (`setup.py build_ext --inplace` with GNNLAB_SANITIZE=1). Its objects go to build/sanitize, apart
# from a normal build's build/temp.*, so neither build reuses the other's objects. The sanitized
# _C.so cannot be imported without the preloaded runtime (ASan aborts the process), so when the
# script ends it puts back the _C.so that was there before (kept as gnnlab/_C.so.presanitize while
# it runs) or, if there was none, removes the sanitized one. GNNLAB_SANITIZE_KEEP=1 leaves the
# sanitized _C.so in place instead, e.g. to rerun single tests with the environment printed below.
#
# Environment:
#   PYTHON                 interpreter with torch and the test extras (default .venv/bin/python)
#   MAX_JOBS               parallel compile jobs (default 1)
#   GNNLAB_SANITIZE_KEEP   1 = keep the sanitized gnnlab/_C.so after the run
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ] && ! command -v "$PY" >/dev/null; then
  echo "[sanitize] no interpreter at $PY; set PYTHON=/path/to/python" >&2
  exit 2
fi
CXX_DRIVER=${CXX:-g++}
SO=gnnlab/_C.so
BACKUP=gnnlab/_C.so.presanitize

restore() {
  if [ "${GNNLAB_SANITIZE_KEEP:-0}" = "1" ]; then
    rm -f "$BACKUP"
    echo "[sanitize] kept the sanitized $SO (GNNLAB_SANITIZE_KEEP=1)"
  elif [ -f "$BACKUP" ]; then
    mv -f "$BACKUP" "$SO"
    echo "[sanitize] restored the previous $SO"
  else
    rm -f "$SO"
    echo "[sanitize] removed the sanitized $SO (there was none before)"
  fi
}
[ -f "$BACKUP" ] && { echo "[sanitize] $BACKUP exists (an earlier run was interrupted?); move it back to $SO first" >&2; exit 2; }
[ -f "$SO" ] && cp -p "$SO" "$BACKUP"
trap restore EXIT

# 1. Build. -O1 -g -fno-omit-frame-pointer keep the reports' stacks exact (setup.py adds the flags).
start=$(date +%s)
echo "[sanitize] building $SO with GNNLAB_SANITIZE=1 (objects in build/sanitize)"
GNNLAB_SANITIZE=1 MAX_JOBS=${MAX_JOBS:-1} "$PY" setup.py -q build_ext --inplace --build-temp build/sanitize
built=$(date +%s)
echo "[sanitize] build took $(( built - start )) s"

# The extension must really carry the instrumentation, not a stale normal build.
if ! nm -D "$SO" | grep " U __asan_init" >/dev/null; then  # no -q: an early exit would SIGPIPE nm under pipefail
  echo "[sanitize] $SO has no ASan instrumentation (__asan_init missing)" >&2
  exit 1
fi

# 2. Run. Python and torch are not instrumented, so the ASan/UBSan runtimes are preloaded: the ASan
# runtime must come first in the process's library list.
LIBASAN=$("$CXX_DRIVER" -print-file-name=libasan.so)
LIBUBSAN=$("$CXX_DRIVER" -print-file-name=libubsan.so)
for lib in "$LIBASAN" "$LIBUBSAN"; do
  [ -e "$lib" ] || { echo "[sanitize] sanitizer runtime $lib not found (install gcc's libasan/libubsan)" >&2; exit 2; }
done
export LD_PRELOAD="$LIBASAN:$LIBUBSAN${LD_PRELOAD:+:$LD_PRELOAD}"
# detect_leaks=0: CPython and torch keep allocations alive until exit by design; LeakSanitizer would
# report them, none of them from csrc. abort_on_error=1: a finding ends the run with SIGABRT (exit
# status 134) rather than a plain exit, so pytest's faulthandler prints the running test.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
# UB is built with -fno-sanitize-recover, so the first report already stops the run; halt_on_error
# says so for any check compiled without it, abort_on_error makes it SIGABRT (as for ASan) instead
# of exit status 1, so faulthandler names the test.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# A missing or unloadable extension fails the extension tests instead of skipping them.
export GNNLAB_REQUIRE_EXTENSION=1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
echo "[sanitize] LD_PRELOAD=$LD_PRELOAD"
echo "[sanitize] ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS"

"$PY" -c "import gnnlab, gnnlab.ops as o; assert o.backend() == 'extension', o.extension_error(); print('[sanitize] gnnlab from', gnnlab.__file__, '- ops backend:', o.backend())"

# --capture=sys: pytest captures Python's sys.stdout/err but leaves file descriptor 2 alone, so a
# sanitizer report (written to fd 2 just before the abort) reaches the terminal instead of being
# lost with pytest's capture file.
status=0
"$PY" -m pytest tests/ops --capture=sys -q -p no:cacheprovider "$@" || status=$?
echo "[sanitize] tests took $(( $(date +%s) - built )) s; pytest exit status $status"
exit "$status"
