#!/usr/bin/env bash
# Where the supervisor's time goes per routed call: py-spy samples systrace while it
# serves
#   enforce     an openat loop under -a (every open emulated: translate, decide, open, ADDFD);
#   permit-all  the same loop under --permit-all -E (CONTINUE and logging);
#   continue    an lseek loop on a held descriptor under -a, lseek decided by name (the
#               CONTINUE target's workload: bench/cpu_per_call.py's first row);
#   in-process  the emulated open served in this process over the tests' fake listener
#               (bench/open_logic.py's loop): no RECV, ADDFD or SEND to wait in, so every
#               sample is the supervisor's own work (py-spy counts a thread blocked in an
#               ioctl as busy: in the live runs ADDFD and SEND show the tracee's time too).
# Writes flame graphs (SVG) and the top functions (text) to bench/profiles/.
#
#   bench/profile.sh [ITERATIONS] [CONFIG...]   (needs root: py-spy reads another process)
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-50000}
shift || true
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(enforce permit-all continue in-process)
python3 -m pip show -q py-spy >/dev/null 2>&1 || python3 -m pip install -q py-spy
pyspy="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/py-spy"
python=$(python3 -c 'import sys; print(sys.executable)')
out=bench/profiles
mkdir -p "$out"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
gcc -O2 -o "$scratch/openat_loop" bench/openat_loop.c
gcc -O2 -o "$scratch/held_loop" bench/held_loop.c
export PYTHONPATH=$PWD/src PATH=/usr/local/bin:/usr/bin:/bin
systrace=("$python" -c "from systrace.cli import entry; entry()")
"${systrace[@]}" -d "$scratch/policies" -A "$scratch/openat_loop" 100 2>/dev/null
"${systrace[@]}" -d "$scratch/held" -A "$scratch/held_loop" 10 2>/dev/null
(cd bench && "$python" -c "import sys; from pathlib import Path; from bench import held_policies; held_policies(Path(sys.argv[1]))" \
    "$scratch/held")  # another reachable policy denies lseek: routed, and decided by name for the loop
target="$scratch/file"
echo x > "$target"
inprocess="import sys; sys.path[:0] = ['$PWD/src', '$PWD/tests']
from test_pipeline_in_process import Parts, Path_, openat
from pathlib import Path
from systrace.decide.modes import Enforce
parts = Parts(lambda p: [p.policy_decider(), Enforce()], Path('$scratch'), '\tnative-fsread: filename eq \"$target\" then permit\n')
parts.supervisor.effects.wake_here = None
path = Path_('$target')
for _ in range($iterations):
    openat(parts, path)
    parts.supervisor.serve_batch()"
for config in "${configs[@]}"; do
    case $config in
        enforce) command=("${systrace[@]}" -d "$scratch/policies" -a "$scratch/openat_loop" "$iterations") ;;
        permit-all) command=("${systrace[@]}" --permit-all -E "$scratch/log" "$scratch/openat_loop" "$iterations") ;;
        continue) command=("${systrace[@]}" -d "$scratch/held" -a "$scratch/held_loop" "$((iterations * 4))") ;;
        in-process) command=("$python" -c "$inprocess") ;;
        *) echo "unknown configuration: $config (enforce, permit-all, continue, in-process)" >&2; exit 2 ;;
    esac
    "$pyspy" record --native --rate 2000 --format flamegraph -o "$out/$config.svg" -- "${command[@]}" >/dev/null 2>&1
    "$pyspy" record --rate 2000 --format raw -o "$out/$config.txt" -- "${command[@]}" >/dev/null 2>&1
    echo "== $config: functions by own samples (share of all samples)"
    "$python" - "$out/$config.txt" <<'PY'
import collections, sys
own = collections.Counter()
for line in open(sys.argv[1]):
    stack, _, count = line.rstrip("\n").rpartition(" ")
    own[stack.split(";")[-1]] += int(count)
total = sum(own.values()) or 1
for frame, count in own.most_common(15):
    print(f"{100 * count / total:5.1f}%  {frame[:150]}")
PY
done
