#!/usr/bin/env bash
# --device cpu sizes its compute pool from the cgroup's CPU quota (a Kubernetes CPU limit), not
# from the node's cores: llmserve runs inside a real cgroup limited to 1 CPU and must say so.
# Needs a writable cgroup cpu controller (root; v1 cpu/ or v2 with cpu in subtree_control);
# skipped (exit 77) where there is none.
set -euo pipefail
BIN=${LLMSERVE:?}
fails=0; passes=0
check() { local name=$1; shift; if "$@"; then echo "ok   $name"; passes=$((passes+1)); else echo "FAIL $name"; fails=$((fails+1)); fi; }

group=""
cleanup() { [ -n "$group" ] && rmdir "$group" 2>/dev/null || true; }
trap cleanup EXIT
name="llmserve-cpu-quota-test-$$"
if [ -w /sys/fs/cgroup/cpu ] && [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then  # v1
  group=/sys/fs/cgroup/cpu/$name
  mkdir "$group" 2>/dev/null && echo 100000 > "$group/cpu.cfs_period_us" && echo 100000 > "$group/cpu.cfs_quota_us" ||
    { echo "skipped: cannot set a v1 CPU quota"; exit 77; }
elif [ -e /sys/fs/cgroup/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then  # v2
  parent=/sys/fs/cgroup$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
  group=$parent/$name
  mkdir "$group" 2>/dev/null && echo "100000 100000" > "$group/cpu.max" ||
    { echo "skipped: cannot set a v2 CPU quota"; group=""; exit 77; }
else
  echo "skipped: no writable cgroup cpu controller"; exit 77
fi

# Runs "$@" inside the limited cgroup, without OMP_NUM_THREADS (which would take precedence).
in_group() { env -u OMP_NUM_THREADS sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$group" "$@"; }
gen=(generate --prompt ROMEO: --max-tokens 8 --temperature 0 --num-kv-blocks 64)
want=$("$BIN" "${gen[@]}" 2> /dev/null)
errlog=$(mktemp)
got=$(in_group "$BIN" "${gen[@]}" 2> "$errlog" || true)
log=$(cat "$errlog"); rm -f "$errlog"
echo "$log" | grep 'CPU compute threads' || true
check "one compute thread under a 1-CPU quota" grep -q 'CPU compute threads: 1 (.*cgroup quota 1.00 CPUs' <<< "$log"
check "  ... and the same greedy text as outside it" [ -n "$got" -a "$got" == "$want" ]
log=$(in_group "$BIN" generate --prompt ROMEO: --max-tokens 4 --num-kv-blocks 64 --cpu-threads 3 2>&1)
check "--cpu-threads overrides the quota" grep -q 'CPU compute threads: 3 (--cpu-threads)' <<< "$log"
log=$(OMP_NUM_THREADS=2 "$BIN" generate --prompt ROMEO: --max-tokens 4 --num-kv-blocks 64 2>&1)
check "OMP_NUM_THREADS is kept when set" grep -q 'CPU compute threads: 2 (OMP_NUM_THREADS)' <<< "$log"
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
