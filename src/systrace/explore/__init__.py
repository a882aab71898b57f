"""--explore: fail every call site of a command in turn and report what breaks.

Pure modules (sites, plan, classify, report, html, progress) hold the logic and are tested
without a tracee; `record` is the supervised recording run and `runner` spawns the
`python -m systrace` runs."""
