#!/usr/bin/env bash
# Install what the tests need on a Debian machine, then run them: the README's test command.
# Debian packages are installed when missing (root needed for that step only); the Python
# packages go into the current interpreter with the project itself (editable); the
# unprivileged account part of the suite runs as is created when missing (root only).
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
# useradd and apt-get live in the sbin directories, which a non-login root shell may not list
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin:/sbin" ;; esac

# command -> Debian package that provides it
declare -A wanted=(
    [gcc]="gcc libc6-dev"
    [g++]="g++"
    [make]="make"
    [strace]="strace"
    [setpriv]="util-linux"
    [useradd]="passwd"
    [git]="git"
    [chromium]="chromium"
    [perl]="perl"
    [node]="nodejs"
    [sqlite3]="sqlite3"
    [curl]="curl"
    [ps]="procps"
    [top]="procps"
    [patch]="patch"
    [ar]="binutils"
    [bzip2]="bzip2"
    [xz]="xz-utils"
    [zip]="zip"
    [unzip]="unzip"
)
need=()
for command in "${!wanted[@]}"; do
    command -v "$command" >/dev/null 2>&1 || need+=(${wanted[$command]})
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "test.sh: missing Debian packages (install them as root): ${need[*]}" >&2
        exit 2
    fi
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
if [ "$(id -u)" -eq 0 ]; then
    id systrace-test >/dev/null 2>&1 || useradd --create-home --shell /bin/sh systrace-test
fi
exec python3 -m pytest -q "$@"
