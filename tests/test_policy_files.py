"""Policy files systrace may trust, what it says about them, and learning that loses
nothing (issue 14 items 7, 8, 10, 15; issue 11 item 8). Real files, real runs."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import Runner, base_env, run, systrace, systrace_argv

from systrace.policy.printer import file_text
from systrace.policy.store import file_name
from systrace.wiring import make_parser

CAT = os.path.realpath("/usr/bin/cat")
CAT_POLICY = file_name(CAT)


def _one_line_error(result: subprocess.CompletedProcess, pattern: str, status: int = 2) -> str:
    err = result.stderr.decode()
    assert result.returncode == status, err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert re.fullmatch(pattern, err.strip()), err
    return err


def _learn_cat(runner: Runner, policy_dir: Path) -> Path:
    result = runner("-d", str(policy_dir), "-A", CAT, "/etc/hostname")
    assert result.returncode == 0, result.stderr
    return policy_dir / CAT_POLICY


# -- 14.7: -a refuses a command without a policy, before launching it -------------------
def test_enforce_without_a_policy_says_so_before_launching(runner: Runner, shared_dir: Path) -> None:
    empty = runner.policy_dir(shared_dir / f"empty-{runner.name}")
    marker = shared_dir / f"marker-{runner.name}"
    marker.unlink(missing_ok=True)
    result = runner("-d", str(empty), "-a", "cat", "/etc/hostname")
    _one_line_error(result, rf"systrace: no policy for {re.escape(CAT)} \(searched {re.escape(str(empty))}, "
                    r"/etc/systrace\): learn one with -A, or write one \(README: Policies\)")
    # a script: its interpreter is what runs, and what needs the policy (as the exec check)
    script = shared_dir / f"script-{runner.name}"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    result = runner("-d", str(empty), "-a", str(script))
    _one_line_error(result, rf"systrace: no policy for {re.escape(os.path.realpath('/bin/sh'))} .*")
    assert not marker.exists()  # refused before it ran


# -- 14.8: untrusted policy files and directories ---------------------------------------
def _refused(result: subprocess.CompletedProcess, path: Path, why: str) -> None:
    _one_line_error(result, rf"systrace: {re.escape(str(path))}: {why}")


def test_untrusted_policies_are_refused(runner: Runner, shared_dir: Path) -> None:
    policy_dir = runner.policy_dir(shared_dir / f"trust-{runner.name}")
    policy = _learn_cat(runner, policy_dir)
    assert runner("-d", str(policy_dir), "-a", "cat", "/etc/hostname").returncode == 0
    # a policy file others may write
    policy.chmod(0o666)
    _refused(runner("-d", str(policy_dir), "-a", "cat", "/etc/hostname"), policy,
             r"untrusted policy file: writable by group and others \(mode 0666\); refusing it \(chmod go-w\)")
    policy.chmod(0o620)
    _refused(runner("-d", str(policy_dir), "-a", "cat", "/etc/hostname"), policy,
             r"untrusted policy file: writable by group \(mode 0620\).*")
    policy.chmod(0o644)  # readable, so the owner is what decides
    # a policy owned by someone else (nobody): for root and for the user alike
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chown(policy, nobody, -1)
    trusted = "root" if runner.name == "root" else f'{runner.env["USER"]} or root'  # (not "root or root")
    _refused(runner("-d", str(policy_dir), "-a", "cat", "/etc/hostname"), policy,
             rf"untrusted policy file: owned by nobody, not by {trusted}; refusing it")
    os.chown(policy, 0, -1)  # root's files are trusted by everyone
    assert runner("-d", str(policy_dir), "-a", "cat", "/etc/hostname").returncode == 0
    os.chown(policy, runner.uid, -1)
    # a policy directory others may write
    policy_dir.chmod(0o777)
    _refused(runner("-d", str(policy_dir), "-a", "cat", "/etc/hostname"), policy_dir,
             r"untrusted policy directory: writable by group and others \(mode 0777\).*")
    policy_dir.chmod(0o700)


def test_a_directory_above_the_policy_directory_must_be_trusted_too(runner: Runner, shared_dir: Path) -> None:
    """Whoever may rename an ancestor can put another tree in the policy directory's place."""
    above = shared_dir / f"above-{runner.name}"
    shutil.rmtree(above, ignore_errors=True)
    above.mkdir(mode=0o755)
    policy_dir = runner.policy_dir(above / "policies")
    _learn_cat(runner, policy_dir)
    assert runner("-d", str(policy_dir), "-a", "cat", "/etc/hostname").returncode == 0
    above.chmod(0o777)  # not sticky: others may rename `policies` away and put theirs there
    _refused(runner("-d", str(policy_dir), "-a", "cat", "/etc/hostname"), above,
             r"untrusted directory above a policy directory: writable by group and others \(mode 0777\).*")
    above.chmod(0o1777)  # sticky and root's, like /tmp: nobody else can rename what is in it
    assert runner("-d", str(policy_dir), "-a", "cat", "/etc/hostname").returncode == 0
    above.chmod(0o755)


def test_links_in_the_policy_directory_are_never_followed(runner: Runner, shared_dir: Path) -> None:
    policy_dir = runner.policy_dir(shared_dir / f"links-{runner.name}")
    elsewhere = runner.policy_dir(shared_dir / f"links-target-{runner.name}")
    real = _learn_cat(runner, elsewhere)
    (policy_dir / CAT_POLICY).symlink_to(real)
    _refused(runner("-d", str(policy_dir), "-a", "cat", "/etc/hostname"), policy_dir / CAT_POLICY,
             r"is a symbolic link \(never followed in a policy directory\); refusing it")
    (policy_dir / CAT_POLICY).unlink()
    # the lock: never created through a link (here pointing at a file that does not exist)
    target = shared_dir / f"lock-target-{runner.name}"
    target.unlink(missing_ok=True)
    (policy_dir / ".lock").symlink_to(target)
    _refused(runner("-d", str(policy_dir), "-A", "cat", "/etc/hostname"), policy_dir / ".lock",
             r"is a symbolic link \(never followed in a policy directory\); refusing it")
    assert not target.exists()
    assert not (policy_dir / CAT_POLICY).exists()


def test_files_that_are_not_policies_are_ignored_with_one_warning(root_runner: Runner, tmp_path: Path) -> None:
    policy_dir = root_runner.policy_dir(tmp_path / "policies")
    policy = _learn_cat(root_runner, policy_dir)
    (policy_dir / "README").write_text("policies for the build machine\n")
    (policy_dir / "run.log").write_bytes(b"systrace: deny user: root, prog: /usr/bin/cat\n\x00\xff")
    shutil.copy(policy, policy_dir / f"{CAT_POLICY}~")  # an editor's backup (a second cat policy)
    (policy_dir / "README").chmod(0o666)  # not a policy: whoever wrote it does not matter
    result = root_runner("-d", str(policy_dir), "-a", "cat", "/etc/hostname")
    assert result.returncode == 0
    assert result.stderr.decode() == (
        f"systrace: ignoring files that are not policies in the policy directory: {policy_dir}/README, "
        f"{policy_dir}/run.log, {policy_dir}/{CAT_POLICY}~\n")


# -- 11.8: -E inside -d ------------------------------------------------------------------
def test_log_inside_the_policy_directory_is_refused(root_runner: Runner, tmp_path: Path) -> None:
    policy_dir = root_runner.policy_dir(tmp_path / "policies")
    for log in (policy_dir / "log", policy_dir / "sub" / ".." / "log"):
        result = root_runner("-d", str(policy_dir), "-E", str(log), "-A", "true")
        _one_line_error(result, rf"systrace: -E {re.escape(str(log))}: the log may not be inside the policy "
                        rf"directory {re.escape(str(policy_dir))} \(the next run would read it\); choose another place")
    assert not (policy_dir / "log").exists()
    assert list(policy_dir.iterdir()) == []  # and nothing was learned
    # beside it is fine
    result = root_runner("-d", str(policy_dir), "-E", str(tmp_path / "log"), "-A", "true")
    assert result.returncode == 0, result.stderr


# -- 11.8: everything written is escaped ---------------------------------------------------
INJECTED = "x, Emulation: native\n\tnative-fsread: permit\n#"


def test_a_newline_in_a_binary_path_cannot_add_a_header_or_a_rule(root_runner: Runner, tmp_path: Path) -> None:
    # what the unescaped header (the old printer, the original's) made of such a name:
    name = f"{tmp_path}/{INJECTED}"
    raw = make_parser().parse_file(f"Policy: {name}, Emulation: native\n\tnative-read: permit\n")
    assert [p.name for p in raw.policies] == [f"{tmp_path}/x"]  # another binary's policy...
    assert "native-fsread: permit" in file_text(raw)  # ...with a rule the program chose
    # learned for real: the policy is the binary's, with only what it did
    binary = Path(name)
    shutil.copy("/usr/bin/true", binary)
    policy_dir = root_runner.policy_dir(tmp_path / "policies")
    result = root_runner("-d", str(policy_dir), "-A", str(binary))
    assert result.returncode == 0, result.stderr
    text = (policy_dir / file_name(name)).read_text()
    assert text.startswith('Policy: "') and text.count("\n") == len(text.splitlines())
    parsed = make_parser().parse_file(text)
    assert [p.name for p in parsed.policies] == [name]
    assert not [r for r in parsed.policies[0].rules if r.syscall == "fsread" and r.expr is None]
    assert make_parser().parse_file(file_text(parsed)) == parsed  # round trip
    # and it replays: the quoted name is the binary's policy
    assert root_runner("-d", str(policy_dir), "-a", str(binary)).returncode == 0
    # where no policy has it, the refusal is still one line, the newline shown escaped
    empty = root_runner.policy_dir(tmp_path / "empty")
    _one_line_error(root_runner("-d", str(empty), "-a", str(binary)),
                    rf"systrace: no policy for {re.escape(str(tmp_path))}/x, Emulation: native\\x0a\tnative-fsread.*")


# -- 14.10: learning is never lost quietly ------------------------------------------------
def test_learning_into_an_unwritable_directory_stops_before_launching(user_runner: Runner, shared_dir: Path) -> None:
    root_owned = shared_dir / "root-owned-policies"
    shutil.rmtree(root_owned, ignore_errors=True)
    root_owned.mkdir(mode=0o755)
    marker = shared_dir / "marker-unwritable"
    marker.unlink(missing_ok=True)
    result = user_runner("-d", str(root_owned), "-A", "sh", "-c", f"touch {marker}")
    _one_line_error(result, rf"systrace: {re.escape(str(root_owned))}: cannot write learned policies here: "
                    r"Permission denied")
    assert not marker.exists()
    result = user_runner("-d", "/etc/hostname", "-A", "true")
    _one_line_error(result, r"systrace: /etc/hostname: (cannot write learned policies here: )?not a directory")
    # a directory it cannot write, whose files it cannot all read either: the first is why
    _one_line_error(user_runner("-d", "/etc", "-A", "true"),
                    r"systrace: /etc: cannot write learned policies here: Permission denied")


ABOVE = re.escape("(systrace makes the policy directory, not the directories above it)")


def test_only_the_policy_directory_itself_is_made(runner: Runner, shared_dir: Path) -> None:
    """-A makes the policy directory (0700), never the directories above it: a typo in -d
    or a HOME that is not there stops with one line, nothing made and nothing launched
    (found in a new user's trial: -d with a mistyped parent, and HOME unset to a missing
    directory, made whole trees)."""
    base = shared_dir / f"made-{runner.name}"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(mode=0o755)
    os.chown(base, runner.uid, -1)
    marker = base / "marker"
    result = runner("-d", str(base / "typo" / "policies"), "-A", "sh", "-c", f"touch {marker}")
    _one_line_error(result, rf"systrace: {re.escape(str(base / 'typo' / 'policies'))}: cannot write learned "
                    rf"policies here: {re.escape(str(base / 'typo'))} does not exist {ABOVE}")
    assert sorted(path.name for path in base.iterdir()) == []
    home = base / "no-such-home"
    result = run(runner.argv("-A", "sh", "-c", f"touch {marker}"), env={**runner.env, "HOME": str(home)}, cwd=runner.cwd)
    _one_line_error(result, rf"systrace: {re.escape(str(home / '.systrace'))}: cannot write learned policies here: "
                    rf"{re.escape(str(home))} does not exist {ABOVE}")
    assert sorted(path.name for path in base.iterdir()) == []
    result = runner("-d", str(base / "policies"), "-A", "true")  # one level: made, private
    assert result.returncode == 0, result.stderr
    made = (base / "policies").stat()
    assert stat.S_IMODE(made.st_mode) == 0o700 and made.st_uid == runner.uid


def test_rules_that_cannot_be_written_late_are_kept_and_the_status_too(user_runner: Runner, shared_dir: Path,
                                                                       syslog_socket) -> None:
    policy_dir = user_runner.policy_dir(shared_dir / "late-eacces")
    rescue = user_runner.policy_dir(shared_dir / "late-eacces-tmp")
    runner = Runner(user_runner.name, user_runner.prefix, user_runner.python,  # log records: to syslog
                    dict(user_runner.env, TMPDIR=str(rescue), SYSTRACE_SYSLOG_SOCKET=syslog_socket.path), user_runner.cwd)
    # the command takes the directory's write permission away while it runs
    result = runner("-d", str(policy_dir), "-A", "sh", "-c", f"chmod 500 {policy_dir}; cat /etc/hostname; exit 3")
    policy_dir.chmod(0o700)
    binaries = sorted(os.path.realpath(shutil.which(name)) for name in ("sh", "chmod", "cat"))
    err = result.stderr.decode()
    assert result.returncode == 3, err  # the command's status, not systrace's
    kept = sorted(rescue.iterdir())
    assert len(kept) == 3, err  # sh's, chmod's and cat's rules, one file each
    lines = err.splitlines()
    assert len(lines) == 3 and all("Traceback" not in line for line in lines)
    assert sorted(line.split()[4] for line in lines) == binaries
    for line in lines:
        assert re.fullmatch(rf"systrace: learned rules for /\S+ kept in "
                            rf"{re.escape(str(rescue))}/\S+\.unsaved \(the policy could not be written: "
                            rf"{re.escape(str(policy_dir))}/\S+: Permission denied\)", line), line
    texts = {p.name: p.read_text() for p in kept}
    cat_text = next(t for n, t in texts.items() if n.startswith(CAT_POLICY + "."))
    assert 'native-fsread: filename eq "/etc/hostname" then permit' in cat_text
    assert [p.name for p in make_parser().parse_file(cat_text).policies] == [CAT]


@pytest.mark.parametrize("log", [[], ["-e"]], ids=["no-syslog", "stderr"])
def test_rules_kept_elsewhere_are_said_once_when_the_log_is_stderr(user_runner: Runner, shared_dir: Path,
                                                                   log: list[str]) -> None:
    """With the log on stderr (-e, or no syslog socket: the fallback), a policy that could
    not be written is said once, by the line saying where its rules are kept, not also by
    a log record (found in a new user's trial: two lines per policy)."""
    policy_dir = user_runner.policy_dir(shared_dir / f"late-stderr{len(log)}")
    rescue = user_runner.policy_dir(shared_dir / f"late-stderr{len(log)}-tmp")
    runner = Runner(user_runner.name, user_runner.prefix, user_runner.python,
                    dict(user_runner.env, TMPDIR=str(rescue), SYSTRACE_SYSLOG_SOCKET=str(shared_dir / "no-such-socket")),
                    user_runner.cwd)
    result = runner(*log, "-d", str(policy_dir), "-A", "sh", "-c", f"chmod 500 {policy_dir}; cat /etc/hostname; exit 3")
    policy_dir.chmod(0o700)
    err = result.stderr.decode()
    assert result.returncode == 3, err
    assert len(list(rescue.iterdir())) == 3, err
    lines = err.splitlines()
    assert len(lines) == 3, err  # sh's, chmod's and cat's: one line each
    assert all(line.startswith("systrace: learned rules for /") and " kept in " in line for line in lines), err


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="mounts a tmpfs: needs root")
def test_a_full_policy_directory_keeps_the_rules_elsewhere(tmp_path: Path, syslog_socket) -> None:
    policy_dir = tmp_path / "small"
    policy_dir.mkdir(mode=0o700)
    rescue = tmp_path / "rescue"
    rescue.mkdir(mode=0o700)
    supervised = " ".join(systrace_argv())
    script = (f"mount -t tmpfs -o size=64k,mode=0700 tmpfs {policy_dir} && exec {supervised} -d {policy_dir} "
              f"-A sh -c 'cat /dev/zero > {policy_dir}/fill; cat /etc/hostname; exit 4'")
    result = run(["unshare", "-m", "sh", "-c", script], env=base_env(TMPDIR=str(rescue), SYSTRACE_SYSLOG_SOCKET=syslog_socket.path))
    err = result.stderr.decode()
    assert result.returncode == 4, err
    kept = sorted(rescue.iterdir())
    assert kept, err
    assert "No space left on device" in err and "Traceback" not in err
    assert all(line.startswith(("systrace: learned rules for", "cat: write error")) for line in err.splitlines()), err
    assert any('filename eq "/etc/hostname" then permit' in p.read_text() for p in kept)


BAD_ARGUMENTS = [
    ["-r", "abc", "true"], ["-r", "200", "true"], ["--seed", "x", "-r", "1", "true"], ["--seed", "1", "true"],
    ["--eligible", "nosuchcall", "-r", "1", "true"], ["--inject", "nosuchcall", "true"],
    ["--inject", "openat:error=EFOO", "true"], ["--inject", "", "true"], ["--fault", ":::", "true"],
    ["--replay", "/nonexistent", "true"], ["--replay", "/etc", "true"], ["--replay", "/etc/hostname", "true"],
    ["-E", "/nonexistent/dir/log", "-a", "true"], ["-E", "/etc", "--permit-all", "true"], ["-E", "", "-A", "true"],
    ["-d", "/etc/hostname", "-a", "true"], ["-d", "/etc/hostname", "-A", "true"], ["-d", "/nonexistent/x", "-a", "true"],
    ["-d", "", "-a", "true"], ["-f", "/nonexistent", "-a", "true"], ["-f", "/etc", "-a", "true"],
    ["-f", "/etc/hostname", "-a", "true"], ["-f", "/dev/null", "-a", "true"], ["-f", "/dev/zero", "-a", "true"],
    ["-g", './fe "x', "true"], ["-g", "", "true"], ["-g", "/nonexistent-frontend", "true"],
    ["-c", "nosuchuser", "--permit-all", "true"], ["-c", "root:nosuchgroup", "--permit-all", "true"],
    ["-c", ":", "--permit-all", "true"], ["-c", "99999999999:0", "--permit-all", "true"],
    ["-c", "0:99999999999", "--permit-all", "true"], ["-c", "1000", "--permit-all", "true"],
    ["-a", "-A", "true"], ["--kill-on-violation", "true"], ["-t", "-a", "true"], ["-t", "-g", "x", "true"],
    ["--permit-all", "-a", "true"], ["--bogus", "true"], [], ["-a"], ["-a", "/nonexistent-command"], ["-a", "/etc"],
    ["-a", ""], ["-a", "/etc/hostname"], ["-V", "-a"],
]


@pytest.mark.parametrize("args", BAD_ARGUMENTS, ids=lambda a: " ".join(a) or "no-args")
def test_bad_arguments_give_one_line(args: list[str], tmp_path: Path) -> None:
    """Every option fed a bad value: a clear line (and the usage line for usage errors),
    a non-zero status, never a traceback."""
    result = systrace(*args, env=base_env(HOME=str(tmp_path)), input=b"")
    err = result.stderr.decode()
    if args == ["-V", "-a"]:  # -V wins, as the original
        assert result.returncode == 0 and not err
        return
    assert result.returncode != 0, err
    assert "Traceback" not in err and "[Errno" not in err, err
    lines = err.splitlines()
    assert lines[0].startswith("systrace: "), err
    if len(lines) == 3:  # a policy's place: the line and a caret under the error
        assert lines[1].startswith("    ") and lines[2].strip() == "^", err
    else:
        assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("usage: systrace")), err


# -- 14.15: what a parse error echoes -------------------------------------------------------
def test_parse_errors_echo_no_control_bytes_and_no_huge_line(root_runner: Runner, tmp_path: Path) -> None:
    policy_dir = root_runner.policy_dir(tmp_path / "policies")
    long_value = "a" * 57000
    line = f'\tnative-fsread: filename eq "{long_value}\x1b]0;owned\x07" then permit \x1b[2J oops'
    (policy_dir / CAT_POLICY).write_text(f"Policy: {CAT}, Emulation: native\n{line}\n")
    result = root_runner("-d", str(policy_dir), "-a", "cat", "/etc/hostname")
    err = result.stderr.decode()
    assert result.returncode == 2
    assert "\x1b" not in err and "\x07" not in err
    assert len(err) < 400, len(err)
    head, shown, caret = err.splitlines()
    column = line.index("\x1b[2J") + 1
    assert head == f"systrace: {policy_dir}/{CAT_POLICY}:2:{column}: unexpected character '\\x1b'"
    assert shown.startswith("    ...a") and "\\x1b]0;owned\\x07" in shown
    assert shown[caret.index("^"):].startswith("\\x1b[2J")  # the caret under the error


def test_rules_learned_for_a_policy_systrace_does_not_write_are_kept(root_runner: Runner, tmp_path: Path) -> None:
    """A -f (or /etc/systrace) policy is read, never written: what -A learns for it is kept
    beside the user's policies and said, not dropped."""
    policy_dir = root_runner.policy_dir(tmp_path / "policies")
    extra = tmp_path / "cat.policy"
    extra.write_text(f"Policy: {CAT}, Emulation: native\n\tnative-read: permit\n")
    result = root_runner("-d", str(policy_dir), "-f", str(extra), "-A", "cat", "/etc/hostname")
    assert result.returncode == 0
    kept = list(policy_dir.glob(f"{CAT_POLICY}.*.unsaved"))
    assert len(kept) == 1
    _one_line_error(result, rf"systrace: learned rules for {re.escape(CAT)} kept in {re.escape(str(kept[0]))} "
                    rf"\(the policy could not be written: it was read from {re.escape(str(extra))}, which is not "
                    r"systrace's to write\)", status=0)
    assert 'native-fsread: filename eq "/etc/hostname" then permit' in kept[0].read_text()
    assert extra.read_text() == f"Policy: {CAT}, Emulation: native\n\tnative-read: permit\n"
    # -U: nothing is written, by request
    assert root_runner("-U", "-f", str(extra), "-A", "cat", "/etc/hostname").stderr == b""
