#!/usr/bin/env bash
# Where the supervisor's time goes per routed call: py-spy samples systrace while it
# serves an openat loop under -a (emulated opens) and under --permit-all -e (CONTINUE and
# logging). Writes flame graphs (SVG) and the top functions (text) to bench/profiles/.
#
#   bench/profile.sh [ITERATIONS]        (needs root: py-spy reads another process)
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-50000}
python3 -m pip show -q py-spy >/dev/null 2>&1 || python3 -m pip install -q py-spy
pyspy="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/py-spy"
python=$(python3 -c 'import sys; print(sys.executable)')
out=bench/profiles
mkdir -p "$out"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
gcc -O2 -o "$scratch/openat_loop" bench/openat_loop.c
export PYTHONPATH=$PWD/src PATH=/usr/local/bin:/usr/bin:/bin
systrace=("$python" -c "from systrace.cli import entry; entry()")
"${systrace[@]}" -d "$scratch/policies" -A "$scratch/openat_loop" 100 2>/dev/null
for config in enforce permit-all; do
    case $config in
        enforce) args=(-d "$scratch/policies" -a) ;;
        permit-all) args=(--permit-all -E "$scratch/log") ;;
    esac
    "$pyspy" record --native --rate 2000 --format flamegraph -o "$out/$config.svg" -- \
        "${systrace[@]}" "${args[@]}" "$scratch/openat_loop" "$iterations" >/dev/null
    "$pyspy" record --rate 2000 --format raw -o "$out/$config.txt" -- \
        "${systrace[@]}" "${args[@]}" "$scratch/openat_loop" "$iterations" >/dev/null
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
