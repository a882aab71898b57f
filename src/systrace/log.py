"""Where systrace's messages go: syslog (the original's default), stderr (-e) or a file
(-E), as text lines `systrace: MESSAGE` or as JSON lines for machines.

Nothing here may stop or stall supervision (SECURITY.md, "Its own failures"):
- every write is non-blocking, on a file description of systrace's own (stderr is
  reopened, so the command's stderr keeps its flags); what does not fit is kept in a
  bounded buffer and written at the next record, what does not fit there is counted;
- a sink that fails (a closed pipe, a full disk, EIO) is reported once and replaced by
  the next one available: -E FILE, then stderr, then syslog, then none (counted only);
- a text line is one line, whatever the message holds: values are escaped by their
  callers as in a question line, and any control character left is escaped here.
  JSON records carry the raw values, JSON-escaped.

The syslog socket is `/dev/log`; SYSTRACE_SYSLOG_SOCKET names another one (for tests).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    import _socket
    from collections.abc import Callable

    # a record's fields: a dict, or (records written once per call, decide/reporting.py)
    # the JSON members the caller wrote, JsonEncoders.text escaping each value
    Fields = dict[str, object] | str

SYSLOG_SOCKET = "/dev/log"
SYSLOG_PRIORITY = 10 * 8 + 5  # LOG_AUTHPRIV | LOG_NOTICE, as the original
MAX_BUFFERED = 1 << 20  # bytes kept for a sink that cannot take them now
_RETRY = (errno.EAGAIN, errno.EINTR)
CLOSE_GRACE = 1.0  # seconds a sink gets at exit to take what is buffered


class SinkFailed(Exception):
    """The sink cannot be written any more (the message says why)."""


class JsonEncoders:
    """How JSON records are written: raw values, JSON-escaped, ASCII (a byte that was not
    UTF-8, surrogateescape, becomes a \\udcNN escape: still valid JSON), separators
    ", " and ": ", anything JSON cannot write as str(value). Built with the first JSON
    sink (json is imported only then: start-up time)."""

    def __init__(self) -> None:
        import json
        from json import encoder

        self.string: Callable[[str], str] = encoder.encode_basestring_ascii
        make = getattr(encoder, "c_make_encoder", None)  # (json's C part; not in typeshed)
        if make is not None:  # made once, not once a record as JSONEncoder.encode does
            chunks = make({}, str, self.string, None, ": ", ", ", False, False, True)
            self.value: Callable[[object], str] = lambda value: "".join(chunks(value, 0))
        else:
            self.value = json.JSONEncoder(ensure_ascii=True, default=str, separators=(", ", ": ")).encode

    def text(self, value: object) -> str:
        """A JSON string for a str; anything else as `value` writes it."""
        return self.string(value) if type(value) is str else self.value(value)  # type: ignore[arg-type]


_json: JsonEncoders | None = None


def json_encoders() -> JsonEncoders:
    global _json
    if _json is None:
        _json = JsonEncoders()
    return _json


_CONTROL_BYTES = bytes(range(0x20)) + b"\x7f"


def _text_record(message: str) -> bytes:
    """`systrace: MESSAGE` and a newline, the message on one line (_one_line)."""
    if message.isascii():  # the common case, tested without looking at each character in Python
        data = message.encode("ascii")
        if len(data.translate(None, _CONTROL_BYTES)) == len(data):
            return b"systrace: " + data + b"\n"
    return f"systrace: {_one_line(message)}\n".encode("utf-8", "backslashreplace")


def _one_line(message: str) -> str:
    """The message with every character that is not printable escaped (\\n, \\xNN):
    what a tracee put in a value can never start a line of its own."""
    if message.isprintable():  # the common case
        return message
    out = []
    for char in message:
        if char.isprintable():
            out.append(char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        else:
            code = ord(char)
            if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
                code -= 0xDC00
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


class Sink:
    """Formats records and writes them without ever blocking."""

    name = "log"

    def __init__(self, json_lines: bool):
        self.json_lines = json_lines
        self._json = json_encoders() if json_lines else None
        self.lost = 0  # records dropped because the sink could not take them in time

    def record(self, message: str, fields: Fields) -> bytes:
        """The record's bytes: a text line, or a JSON line with the time, the message and
        the fields (raw values, JSON-escaped; a str: the members as the caller wrote them)."""
        json = self._json
        if json is None:
            return _text_record(message)
        if type(fields) is not str:
            fields = json.value(fields)[1:-1]  # type: ignore[arg-type]
        separator = ", " if fields else ""
        return (f'{{"time": {time.time():.6f}, "message": {json.text(message)}{separator}{fields}}}\n'
                ).encode("ascii")

    def write(self, message: str, fields: Fields) -> None:
        """Raises SinkFailed when the sink is gone for good."""
        raise NotImplementedError

    def flush(self) -> None:
        """Write what is buffered, if it can be written now."""

    def close(self, deadline: float = 0.0) -> None:
        pass


class FdSink(Sink):
    """A byte stream: a file, a pipe, a terminal. Writes are non-blocking (the descriptor
    is systrace's own); a partial write keeps the rest for later, in order."""

    def __init__(self, fd: int, name: str, json_lines: bool, owned: bool, poll_first: bool = False):
        super().__init__(json_lines)
        self.fd, self.name, self.owned = fd, name, owned
        self.buffer = bytearray()
        self._poller = None
        if poll_first:  # a shared blocking descriptor: write only what poll says fits
            import select

            self._poller = select.poll()
            self._poller.register(fd, select.POLLOUT)

    def _send(self, data: bytes | bytearray) -> int:
        if self._poller is not None and not self._poller.poll(0):
            return 0
        return os.write(self.fd, data)

    def write(self, message: str, fields: Fields) -> None:
        data = self.record(message, fields)
        if self.buffer:
            self.flush()
            if self.buffer:
                if len(self.buffer) + len(data) > MAX_BUFFERED:
                    self.lost += 1
                else:
                    self.buffer += data
                return
        try:
            written = self._send(data)
        except OSError as error:
            if error.errno not in _RETRY:
                raise SinkFailed(error.strerror or str(error)) from None
            written = 0
        if written < len(data):
            self.buffer += data[written:]

    def flush(self) -> None:
        while self.buffer:
            try:
                written = self._send(self.buffer)
            except OSError as error:
                if error.errno in _RETRY:
                    return
                raise SinkFailed(error.strerror or str(error)) from None
            if written <= 0:
                return
            del self.buffer[:written]

    def close(self, deadline: float = 0.0) -> None:
        """Supervision is over: what is buffered gets until `deadline` (time.monotonic())
        to be written; the rest is counted as lost."""
        while self.buffer:
            try:
                self.flush()
            except SinkFailed:
                break
            remaining = deadline - time.monotonic()
            if not self.buffer or remaining <= 0:
                break
            import select

            poller = select.poll()
            poller.register(self.fd, select.POLLOUT)
            poller.poll(max(1, int(remaining * 1000)))
        self.lost += self.buffer.count(b"\n")
        self.buffer.clear()
        self._release()

    def _release(self) -> None:
        if self.owned:
            os.close(self.fd)
            self.owned = False


class SocketSink(FdSink):
    """A stream socket (stderr that is a socket), sent to with MSG_DONTWAIT. Sockets here
    are _socket's, the C module under socket: `socket` itself costs milliseconds of
    start-up (its enums), for every run that logs to syslog."""

    def __init__(self, sock: _socket.socket, name: str, json_lines: bool):
        import _socket

        super().__init__(sock.fileno(), name, json_lines, owned=False)
        self.sock = sock
        self._dontwait = _socket.MSG_DONTWAIT | _socket.MSG_NOSIGNAL

    def _send(self, data: bytes | bytearray) -> int:
        return self.sock.send(data, self._dontwait)

    def _release(self) -> None:
        self.sock.close()


class SyslogSink(SocketSink):
    """RFC 3164 datagrams to the syslog socket, as syslog(3) sends them, but never
    blocking (syslog(3) blocks when the daemon's queue is full, and a tracee can fill it):
    a datagram the daemon has no room for is counted. Raises OSError when there is no
    syslog socket."""

    def __init__(self, path: str | None = None):
        import _socket

        path = path or os.environ.get("SYSTRACE_SYSLOG_SOCKET") or SYSLOG_SOCKET
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC | _socket.SOCK_NONBLOCK)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        super().__init__(sock, "syslog", False)
        self._tag = f"systrace[{os.getpid()}]: "
        self._second = -1
        self._stamp = ""

    def write(self, message: str, fields: Fields) -> None:
        now = int(time.time())
        if now != self._second:  # strftime once a second, not once a record
            self._second, self._stamp = now, time.strftime("%b %e %H:%M:%S", time.localtime(now))
        data = f"<{SYSLOG_PRIORITY}>{self._stamp} {self._tag}{_one_line(message)}".encode("utf-8", "backslashreplace")
        try:
            self._send(data)
        except OSError as error:
            if error.errno in _RETRY or error.errno == errno.ENOBUFS:
                self.lost += 1
            else:
                raise SinkFailed(error.strerror or str(error)) from None


def open_file_sink(path: str, json_lines: bool) -> FdSink:
    """Append to a log file; it is created 0600, since it records what a program did."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    _set_nonblocking(fd)  # our own file description: a FIFO or a terminal must not stall us
    return FdSink(fd, path, json_lines, owned=True)


def stderr_sink(json_lines: bool) -> Sink:
    """stderr, written without blocking. The command shares systrace's stderr, so its
    flags are not touched: a pipe or a terminal is reopened (a new file description that
    may be non-blocking); a regular file is written as it is (it does not block, and a
    reopened one would have its own offset); a socket is sent to with MSG_DONTWAIT."""
    fd = sys.stderr.fileno() if sys.stderr is not None else 2
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return FdSink(fd, "stderr", json_lines, owned=False)
    if stat.S_ISSOCK(mode):
        import _socket

        return SocketSink(_socket.socket(fileno=os.dup(fd)), "stderr", json_lines)
    try:
        own = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        # cannot reopen it (another user's terminal): the shared descriptor, written
        # only when poll says it takes data (a write larger than a terminal's room may
        # still wait: SECURITY.md)
        return FdSink(fd, "stderr", json_lines, owned=False, poll_first=True)
    return FdSink(own, "stderr", json_lines, owned=True)


def _set_nonblocking(fd: int) -> None:
    import fcntl

    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


def _stderr_fallback(json_lines: bool) -> Sink:
    return stderr_sink(json_lines)


def _syslog_fallback(json_lines: bool) -> Sink:
    return SyslogSink()


FALLBACKS: dict[str, Callable[[bool], Sink]] = {"stderr": _stderr_fallback, "syslog": _syslog_fallback}


class Log:
    """The active sinks; a failed one is replaced by the next fallback not yet tried."""

    def __init__(self, sinks: list[Sink], fallbacks: tuple[str, ...] = ("stderr", "syslog"), json_lines: bool = False):
        self.sinks = sinks
        self.json_lines = json_lines
        self.tried = {sink.name for sink in sinks}
        self.fallbacks = [name for name in fallbacks if name not in self.tried]
        self.unlogged = 0  # records no sink took
        self.failures: list[str] = []  # "SINK: why", reported as they happen and at exit
        self._lost_before = 0  # records dropped by sinks that failed since
        self.notes: list[tuple[str, str, str]] = []  # (sink, why, what) to say before the first record
        self.structured = False  # does any sink write the fields (JSON)? If not, callers may leave them out
        self._sinks_changed()

    def stderr_only(self) -> bool:
        """Does every record go to stderr as a text line, where systrace's own messages go
        too (a message said there already need not be logged again)? With no sink yet (no
        syslog socket), the one the first record would open is asked."""
        if not self.sinks:
            return self.fallbacks[:1] == ["stderr"] and not self.json_lines
        return all(sink.name == "stderr" and not sink.json_lines for sink in self.sinks)

    def _sinks_changed(self) -> None:
        # an attribute, not a property: read once per logged call
        self.structured = self.json_lines or any(sink.json_lines for sink in self.sinks)

    def message(self, message: str, **fields: object) -> None:
        self.write(message, fields)

    def write(self, message: str, fields: Fields) -> None:
        """A record: its fields as a dict, or as the JSON members the caller wrote (each
        value written by json_encoders().text: decide/reporting.py, once per call)."""
        if self.notes:
            self._say_notes()
        taken = False
        failed = None
        for sink in self.sinks:
            try:
                sink.write(message, fields)
                taken = True
            except SinkFailed as error:
                failed = failed or []
                failed.append((sink, str(error)))
            except Exception as error:  # noqa: BLE001 - a log problem never stops supervision
                failed = failed or []
                failed.append((sink, repr(error)))
        if failed:
            bad = [sink for sink, _ in failed]
            had = [sink for sink in self.sinks if sink not in bad]  # (it took the record)
            taken = self._replace(failed, message, fields, had) or taken
        if not taken:
            self.unlogged += 1

    def _say_notes(self) -> None:
        """The sinks asked for that could not be opened: said once, on the replacement."""
        notes, self.notes = self.notes, []
        if not self.sinks:
            replacement = self._next_sink()
            if replacement is not None:
                self.sinks.append(replacement)
                self._sinks_changed()
        where = ", ".join(sink.name for sink in self.sinks) or "nowhere (records are counted)"
        for sink, why, what in notes:
            self.message(f"{what} ({why}): logging to {where}", event="log-error", sink=sink, reason=why)

    def _replace(self, failed: list[tuple[Sink, str]], message: str, fields: Fields, had: list[Sink]) -> bool:
        """Drop the failed sinks, say so once on the next one, and give it this record (not
        again to the sinks in `had`, which took it)."""
        taken = False
        for sink, reason in failed:
            self.sinks.remove(sink)
            self._lost_before += sink.lost
            try:
                sink.close()
            except Exception:  # noqa: BLE001
                pass
            replacement = self._next_sink() if not self.sinks else None
            where = replacement.name if replacement is not None else (
                ", ".join(s.name for s in self.sinks) or "nowhere (records are counted)")
            note = f"log to {sink.name} failed: {reason}; logging to {where} from now on"
            self.failures.append(f"{sink.name}: {reason}")
            if replacement is not None:
                self.sinks.append(replacement)
            self._sinks_changed()
            self.message(note, event="log-error", sink=sink.name, reason=reason)
        for sink in self.sinks:
            if sink in had:  # (sinks compare by identity)
                continue
            try:
                sink.write(message, fields)
                taken = True
            except Exception:  # noqa: BLE001 - it failed too: the next message replaces it
                pass
        return taken

    def _next_sink(self) -> Sink | None:
        while self.fallbacks:
            name = self.fallbacks.pop(0)
            self.tried.add(name)
            try:
                return FALLBACKS[name](self.json_lines)
            except OSError:
                continue
        return None

    def lost(self) -> int:
        return self.unlogged + self._lost_before + sum(sink.lost for sink in self.sinks)

    def close(self) -> None:
        """Write what is buffered (for at most CLOSE_GRACE seconds: supervision is over)
        and say how many records were lost, if any."""
        deadline = time.monotonic() + CLOSE_GRACE
        for sink in self.sinks:
            try:
                sink.close(deadline)
            except Exception:  # noqa: BLE001
                pass
        lost = self.lost()
        self.sinks = []
        if lost:
            _warn(f"{lost} log record{'s' if lost != 1 else ''} could not be written"
                  + (f" ({'; '.join(self.failures)})" if self.failures else ""))


def _warn(message: str) -> None:
    """One line on stderr, best effort and never blocking (stderr may be the very thing
    that failed, or a terminal the command stopped)."""
    try:
        sink = stderr_sink(False)
        sink.write(message, {})
        sink.close(time.monotonic() + CLOSE_GRACE)
    except (OSError, SinkFailed, ValueError):
        pass


def default_log(log_stderr: bool, log_file: str | None, json_lines: bool) -> Log:
    """The sinks the options ask for; by default syslog, or stderr with one warning when
    there is no syslog socket (containers): a denial must not go nowhere.
    Raises OSError when the -E file cannot be opened."""
    sinks: list[Sink] = []
    notes: list[tuple[str, str, str]] = []  # (sink, why, message) said once the log exists
    if log_file:
        sinks.append(open_file_sink(log_file, json_lines))
    if log_stderr:
        try:
            sinks.append(stderr_sink(json_lines))
        except OSError as error:  # stderr closed
            notes.append(("stderr", error.strerror or str(error), "cannot log to stderr"))
    if not sinks or not log_file and not log_stderr:
        try:
            sinks.append(SyslogSink())
        except OSError as error:
            path = os.environ.get("SYSTRACE_SYSLOG_SOCKET") or SYSLOG_SOCKET
            notes.append(("syslog", error.strerror or str(error), f"no syslog at {path}"))
    log = Log(sinks, fallbacks=("stderr", "syslog"), json_lines=json_lines)
    log.notes = notes  # said with the first record: a run that logs nothing stays silent
    return log
