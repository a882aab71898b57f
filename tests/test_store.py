"""Policy files: names, lookup, safe writes (pure file handling, no tracee)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from systrace.policy import ast
from systrace.policy.errors import PolicyError
from systrace.policy.store import Store, file_name
from systrace.wiring import make_parser


def store(tmp_path: Path, extra: list[Path] | None = None, use_user: bool = True) -> Store:
    s = Store(make_parser(), tmp_path / "user", extra or [], use_user=use_user, system_dir=tmp_path / "system")
    s.load()
    return s


def rule(text: str) -> ast.Rule:
    return make_parser().parse_file(f"Policy: /x, Emulation: native\n\t{text}\n").policies[0].rules[0]


def test_file_names_follow_the_original() -> None:
    assert file_name("/bin/cat") == "bin_cat"
    assert file_name("/usr/lib/x86_64-linux-gnu/ld-2.so") == "usr_lib_x86_64_linux_gnu_ld_2_so"


def test_lookup_order_and_basename_patterns(tmp_path: Path) -> None:
    (tmp_path / "user").mkdir()
    (tmp_path / "system").mkdir()
    (tmp_path / "user" / "bin_cat").write_text("Policy: /bin/cat, Emulation: native\n\tnative-read: permit\n")
    (tmp_path / "system" / "bin_cat").write_text("Policy: /bin/cat, Emulation: native\n\tnative-read: deny\n")
    (tmp_path / "system" / "bin_ls").write_text("Policy: /bin/ls, Emulation: native\n\tnative-read: deny\n")
    extra = tmp_path / "extra.policy"
    extra.write_text("Policy: */sh, Emulation: native\n\tnative-write: permit\n")
    s = store(tmp_path, [extra])
    assert s.find("/bin/cat").policy.rules[0].action.verdict == "permit"  # user first
    assert s.find("/bin/ls").writable is False
    assert s.find("/usr/bin/sh").policy.name == "*/sh"
    assert s.find("/usr/bin/bash") is None
    assert [p.policy.name for p in store(tmp_path, [extra], use_user=False).all()].count("/bin/cat") == 1


def test_learned_rules_are_appended_keeping_comments_and_order(tmp_path: Path) -> None:
    (tmp_path / "user").mkdir()
    path = tmp_path / "user" / "bin_cat"
    original = "Policy: /bin/cat, Emulation: native\n\t# hand-written, keep me\n\tnative-read: permit\n\tnative-write: deny[eio]\n"
    path.write_text(original)
    s = store(tmp_path)
    stored = s.find("/bin/cat")
    assert s.add_rule(stored, rule('native-fsread: filename eq "/etc/a" then permit'))
    assert not s.add_rule(stored, rule("native-read: permit"))  # already there
    assert s.save() == []
    assert path.read_text() == original + '\tnative-fsread: filename eq "/etc/a" then permit\n'
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert s.save() == [] and path.read_text().count("fsread") == 1  # nothing new, nothing written


def test_new_policy_goes_to_the_user_directory(tmp_path: Path) -> None:
    s = store(tmp_path)
    stored = s.create("/usr/bin/new tool")
    s.add_rule(stored, rule("native-brk: permit"))
    assert s.save() == []
    assert (tmp_path / "user" / "usr_bin_new_tool").read_text() == "Policy: /usr/bin/new tool, Emulation: native\n\tnative-brk: permit\n"
    assert oct((tmp_path / "user").stat().st_mode & 0o777) == "0o700"


def test_a_broken_file_is_never_overwritten(tmp_path: Path) -> None:
    s = store(tmp_path)
    stored = s.create("/bin/cat")
    s.add_rule(stored, rule("native-brk: permit"))
    broken = "Policy: /bin/cat, Emulation: native\n\tnative-read permit\n"
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "bin_cat").write_text(broken)  # someone broke it meanwhile
    errors = s.save()
    assert len(errors) == 1 and "bin_cat:2:" in errors[0]
    assert (tmp_path / "user" / "bin_cat").read_text() == broken
    with pytest.raises(PolicyError, match="bin_cat:2:"):  # parsed when used: refused at start-up
        store(tmp_path).require("/bin/cat")
    late = store(tmp_path).find("/bin/cat")  # mid-run: a policy that denies, never written
    assert late is not None and late.broken is not None and not late.writable and late.policy.rules == []


def test_minus_U_writes_nothing(tmp_path: Path) -> None:
    s = store(tmp_path, use_user=False)
    s.add_rule(s.create("/bin/cat"), rule("native-brk: permit"))
    assert s.save() == []
    assert not (tmp_path / "user").exists()


def _learn_many(directory: str, start: int) -> None:
    s = Store(make_parser(), Path(directory), [], system_dir=Path(directory) / "none")
    for i in range(start, start + 40):
        s.load()
        stored = s.find("/bin/cat") or s.create("/bin/cat")
        s.add_rule(stored, rule(f'native-fsread: filename eq "/f{i}" then permit'))
        assert s.save() == []
        s.by_name.clear()


def test_two_runs_updating_one_policy_lose_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_learn_many, args=(str(tmp_path), n)) for n in (0, 1000)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    text = (tmp_path / "bin_cat").read_text()
    for i in [*range(40), *range(1000, 1040)]:
        assert f'"/f{i}"' in text
    assert text.count("Policy:") == 1


def test_a_shadowed_policy_is_a_warning_naming_both_files(tmp_path: Path) -> None:
    (tmp_path / "user").mkdir(mode=0o700)
    (tmp_path / "system").mkdir()
    cat = "Policy: /bin/cat, Emulation: native\n\tnative-read: permit\n"
    (tmp_path / "user" / "bin_cat").write_text(cat)
    (tmp_path / "user" / "cat.policy").write_text("# by hand\n" + cat)  # a second file, same binary
    (tmp_path / "system" / "bin_cat").write_text(cat)  # the system's: overridden by the user's, as always
    extra = tmp_path / "extra.policy"
    extra.write_text("Policy: /bin/ls, Emulation: native\n" + cat)
    s = store(tmp_path, [extra])
    user = tmp_path / "user"
    assert s.warnings == [
        f"{user}/cat.policy:2:1: warning: the policy for '/bin/cat' is not used: {user}/bin_cat:1 has one for the "
        "same binary and comes first",
        f"{extra}:2:1: warning: the policy for '/bin/cat' is not used: {user}/bin_cat:1 has one for the same "
        "binary and comes first",
    ]
    assert s.find("/bin/cat").path == str(user / "bin_cat")


def test_rescued_rules_go_beside_the_policy_and_are_not_read_back(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.check_writable()
    stored = s.create("/bin/cat")
    s.add_rule(stored, rule("native-read: permit"))
    (tmp_path / "user").chmod(0o500)  # as root this still writes: make the write itself fail
    (tmp_path / "user" / "bin_cat").mkdir()  # the policy's name is taken by a directory
    (tmp_path / "user").chmod(0o700)
    assert s.save() and stored.added
    messages, lost = s.rescue()
    assert not lost and len(messages) == 1
    kept = [p for p in (tmp_path / "user").iterdir() if p.name.endswith(".unsaved")]
    assert len(kept) == 1 and messages[0].startswith(f"learned rules for /bin/cat kept in {kept[0]} (")
    assert "native-read: permit" in kept[0].read_text()
    again = store(tmp_path)
    assert again.find("/bin/cat") is None
    assert any(str(kept[0]) in warning for warning in again.warnings)
