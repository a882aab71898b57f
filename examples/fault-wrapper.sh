#!/usr/bin/env bash
# The fault-injection frontend from the original systrace discussion, for `systrace -g`.
# It answers `permit` to every question (so each call gets a permanent rule, as broad as
# the question, and is asked about once), except for brk: about 1% of brk calls get `deny-now[enobufs]` and
# the rest `permit-now`, so brk keeps being asked about and keeps failing now and then.
#
#   systrace -d /tmp/policies -g examples/fault-wrapper.sh ./program
#
# BRK_FAIL_PERCENT sets the share of failing brk calls (default 1).
percent=${BRK_FAIL_PERCENT:-1}
while IFS= read -r question; do
    case "$question" in
        *", syscall: linux-brk("*)
            if (( RANDOM % 100 < percent )); then answer='deny-now[enobufs]'; else answer='permit-now'; fi ;;
        *) answer=permit ;;
    esac
    printf '%s\n' "$answer"
    # systrace replies OKAY, or explains and says WRONG before reading another answer
    while IFS= read -r reply; do
        case "$reply" in
            OKAY) break ;;
            WRONG) printf 'permit-now\n' ;;
        esac
    done
done
