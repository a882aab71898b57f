"""Where systrace's messages go: syslog (the original's default), stderr (-e) or a file
(-E), as text lines `systrace: MESSAGE` or as JSON lines for machines."""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Protocol, TextIO

    class Sink(Protocol):
        def write(self, message: str, fields: dict[str, object]) -> None: ...
        def close(self) -> None: ...


class StreamSink:
    def __init__(self, stream: TextIO, json_lines: bool, owned: bool = False):
        self.stream = stream
        self.json_lines = json_lines
        self.owned = owned

    def write(self, message: str, fields: dict[str, object]) -> None:
        if self.json_lines:
            import json  # only for JSON logs (start-up time)

            record = {"time": round(time.time(), 6), "message": message, **fields}
            line = json.dumps(record, ensure_ascii=False)
        else:
            line = f"systrace: {message}"
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.owned:
            self.stream.close()


class SyslogSink:
    def __init__(self) -> None:
        import syslog

        self._syslog = syslog
        syslog.openlog("systrace", syslog.LOG_PID, syslog.LOG_AUTHPRIV)

    def write(self, message: str, fields: dict[str, object]) -> None:
        self._syslog.syslog(self._syslog.LOG_NOTICE, message)

    def close(self) -> None:
        self._syslog.closelog()


def open_file_sink(path: str, json_lines: bool) -> StreamSink:
    """Append to a log file; it is created 0600, since it records what a program did."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return StreamSink(os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace", buffering=1), json_lines, owned=True)


def stderr_sink(json_lines: bool) -> StreamSink:
    return StreamSink(sys.stderr, json_lines)


class Log:
    def __init__(self, sinks: list[Sink]):
        self.sinks = sinks

    def message(self, message: str, **fields: object) -> None:
        for sink in self.sinks:
            sink.write(message, fields)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
