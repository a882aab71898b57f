"""No learned rule grants more than the learning run used (issue 11 item 4): a call that
reaches outside the process is learned with what it reached. For each class, the
harmless variant is learned, replays under -a, and the attack variant -- the same calls
aimed elsewhere -- succeeds natively and is denied under -a."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import TIMEOUT, base_env, run, systrace

from systrace.facts import OUTSIDE, ROWS


@pytest.fixture
def outsider():
    """A process outside the run, of the same user (root here)."""
    process = subprocess.Popen(["sleep", str(TIMEOUT)])
    yield str(process.pid)
    process.kill()
    process.wait()


@pytest.fixture
def files(shared_dir: Path, request) -> dict[str, str]:
    directory = shared_dir / f"reach-{request.node.name}".replace("[", "-").replace("]", "")
    directory.mkdir(exist_ok=True)
    out = {}
    for name in ("a", "b", "c"):
        path = directory / name
        path.write_text(name)
        path.chmod(0o644)
        out[name] = str(path)
    return out


def learn_replay_attack(cbin, tmp_path: Path, harmless: list[str], attack: list[str],
                        named: str | None = None, replays: bool = True) -> tuple[int, int]:
    """(attacks that succeeded natively, attacks that succeeded under -a). `named`: a call
    refused unless the policy names it (decide/policy.REFUSED_UNLESS_NAMED) is named by a
    rule that matches nothing, so that -A may learn it. `replays`: the learned run runs
    again under -a (else it is refused too, with a reason logged)."""
    binary = cbin("reach")
    policies = str(tmp_path / "policies")
    mode = harmless[0]
    if named is not None:
        from systrace.policy.store import file_name

        Path(policies).mkdir(mode=0o700)
        (Path(policies) / file_name(binary)).write_text(
            f"Policy: {binary}, Emulation: native\n\tnative-{named}: fdname eq \"<none>\" then deny\n")
    native = run([binary, *attack])
    learned = systrace("-d", policies, "-A", binary, *harmless)
    assert f"{mode}: ok" in learned.stdout.decode(), learned
    replay = systrace("-d", policies, "-a", "-e", binary, *harmless)
    if replays:
        assert f"{mode}: ok" in replay.stdout.decode() and b"deny" not in replay.stderr, replay
    else:
        assert f"{mode}: ok" not in replay.stdout.decode() and b"not carried out" in replay.stderr, replay
    enforced = systrace("-d", policies, "-a", "-e", binary, *attack)
    return int(f"{mode}: ok" in native.stdout.decode()), int(f"{mode}: ok" in enforced.stdout.decode())


@pytest.mark.parametrize("mode", ["ptrace", "prlimit", "kill", "pidfd"])
def test_calls_on_another_process_are_learned_with_the_process(cbin, tmp_path: Path, outsider: str,
                                                                mode: str) -> None:
    assert learn_replay_attack(cbin, tmp_path, [mode, "child"], [mode, outsider]) == (1, 0)


def test_ioctl_is_learned_with_its_request(cbin, tmp_path: Path) -> None:
    # TCFLSH learned; TIOCSTI (typing into the terminal) on the same descriptor is denied
    assert learn_replay_attack(cbin, tmp_path, ["ioctl", "TCFLSH"], ["ioctl", "TIOCSTI"]) == (1, 0)


def test_open_tree_is_learned_with_its_path(cbin, tmp_path: Path, files: dict[str, str]) -> None:
    """Learned with its path; under -a a rule on its path cannot be carried out (ADDFD
    cannot install the O_PATH descriptor open_tree returns) and continuing it would let a
    second thread swap the path: refused, the learned run's as the attack (SECURITY.md)."""
    directory = str(Path(files["a"]).parent)
    assert learn_replay_attack(cbin, tmp_path, ["open_tree", directory], ["open_tree", "/etc"], named="open_tree",
                               replays=False) == (1, 0)
    policy = "".join(path.read_text() for path in (tmp_path / "policies").iterdir() if path.is_file())
    # (by its name, or by its shape when the test directory's random part looks generated)
    assert f'native-open_tree: filename eq "{directory}"' in policy or "native-open_tree: filename re " in policy, policy


def test_open_by_handle_at_is_learned_with_its_handle(cbin, tmp_path: Path, files: dict[str, str]) -> None:
    handles = {name: run([cbin("reach"), "handle-of", files[name]]).stdout.decode().strip() for name in "ab"}
    assert all(":" in handle for handle in handles.values()), handles
    harmless = ["handle", files["a"], files["b"], handles["a"]]
    attack = ["handle", files["a"], files["b"], handles["b"]]
    assert learn_replay_attack(cbin, tmp_path, harmless, attack, named="open_by_handle_at") == (1, 0)


def test_changing_a_file_through_a_descriptor_is_learned_with_the_file(cbin, tmp_path: Path,
                                                                       files: dict[str, str]) -> None:
    # both runs open a and b read-only; the learned fchmod is on a, the attack's on b
    harmless = ["fchmod", files["a"], files["b"], "A"]
    attack = ["fchmod", files["a"], files["b"], "B"]
    assert learn_replay_attack(cbin, tmp_path, harmless, attack) == (1, 0)


@pytest.mark.parametrize("mode", ["rename", "link", "exchange"])
def test_both_names_of_rename_link_and_exchange_are_learned(cbin, tmp_path: Path, files: dict[str, str],
                                                           mode: str) -> None:
    # same first name, another second name (RENAME_EXCHANGE swaps with it)
    target = {"link": files["b"] + ".link"}.get(mode, files["b"])
    other = {"link": files["c"] + ".link"}.get(mode, files["c"])
    assert learn_replay_attack(cbin, tmp_path, [mode, files["a"], target], [mode, files["a"], other]) == (1, 0)


# Calls reaching outside the process whose registers say nothing more (no arguments, or
# all of them in a structure): their rule can only be on the call itself.
ONLY_THE_CALL = {"sync", "vhangup", "adjtimex", "io_uring_setup", "io_uring_enter", "io_uring_register"}


def test_every_call_reaching_outside_is_learned_with_an_argument() -> None:
    from systrace.decide.modes import learned_args
    from systrace.translate.table import arg_names

    plain = [name for name, row in ROWS.items() if row.reach == OUTSIDE and name not in ONLY_THE_CALL
             and not learned_args(name, [(arg, "value") for arg in arg_names(name)])]
    assert plain == []


def test_an_unreadable_argv_is_never_learned_nor_permitted(tmp_path: Path) -> None:
    """A 300-word argv cannot be read (more than 256 words): learning writes no rule on
    it, and a negative rule (`argv nsub "evil"`) does not permit it."""
    policies = tmp_path / "policies"
    env = base_env(PATH="/usr/bin:/bin")
    short, long = ["sh", "-c", "exec /bin/true 1 2"], ["sh", "-c", "exec /bin/true $(seq 300)"]
    for argv in (short, long):
        assert systrace("-d", str(policies), "-A", *argv, env=env).returncode == 0
    texts = {path: path.read_text() for path in policies.iterdir() if path.is_file() and path.name != ".lock"}
    assert not any("<unreadable>" in text for text in texts.values())
    rule = 'argv eq "/bin/true 1 2"'
    (path,) = [path for path, text in texts.items() if rule in text]
    path.write_text(texts[path].replace(rule, 'argv nsub "evil"'))
    assert systrace("-d", str(policies), "-a", *short, env=env).returncode == 0
    denied = systrace("-d", str(policies), "-a", "-e", *long, env=env)
    assert denied.returncode != 0 and b"syscall: linux-execve(59)" in denied.stderr, denied


def test_a_pid_learned_in_a_pid_namespace_names_nothing_outside_it(cbin, tmp_path: Path, outsider: str) -> None:
    """In a pid namespace of its own a process numbers processes its own way: its child
    (pid 2 there) was translated by systrace's numbering, as `<outside the run>`, so the
    rule learned from prlimit64 of its own child let the same binary, run without the
    namespace, set the limits of any process outside the run. Such a caller's pids are
    now `<in its pid namespace>` (its own still `<own process>`: abort() replays)."""
    binary = cbin("reach")
    policies = tmp_path / "policies"
    learned = systrace("-d", str(policies), "-A", "unshare", "-Upf", "--map-root-user", binary, "prlimit", "child")
    if learned.returncode != 0 and b"unshare failed" in learned.stderr:
        pytest.skip(f"no user and pid namespaces here: {learned.stderr!r}")
    assert "prlimit: ok" in learned.stdout.decode(), learned
    from systrace.policy.store import file_name

    text = (policies / file_name(binary)).read_text()
    assert 'pidname eq "<in its pid namespace>"' in text and "<outside the run>" not in text
    native = run([binary, "prlimit", outsider])
    enforced = systrace("-d", str(policies), "-a", "-e", binary, "prlimit", outsider)
    counts = (int("prlimit: ok" in native.stdout.decode()), int("prlimit: ok" in enforced.stdout.decode()))
    print(f"prlimit64 of an outside process with a rule learned in a pid namespace: natively {counts[0]}/1, "
          f"under -a {counts[1]}/1")
    assert counts == (1, 0), enforced
