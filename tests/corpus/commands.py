"""The real-program corpus: commands a new user would try, each deterministic natively.

A command is a bash script (or an argv) run in a fresh work directory that `setup` (run
natively, untraced) prepared. `xfail` names a known cause outside the learning code, with
the engineer's area it belongs to; it is None for every command expected to pass.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    script: str | tuple[str, ...]
    setup: str = ""
    xfail: str | None = None

    @property
    def argv(self) -> list[str]:
        if isinstance(self.script, tuple):
            return list(self.script)
        return ["bash", "-c", self.script]


WORDS = "printf 'pear\\napple\\nfig\\napple\\nbanana\\n' > words; printf 'alpha\\nbeta\\ngamma\\n' > f.txt"
TREE = WORDS + "; mkdir -p dir/sub; echo one > dir/a; echo two > dir/sub/b; touch -d @1577836800 dir/a dir/sub/b dir/sub dir"
HELLO_C = "printf '#include <stdio.h>\\nint main(void){puts(\"hello c\");return 3;}\\n' > hello.c"
HELLO_CXX = ("printf '#include <iostream>\\n#include <vector>\\nint main(){std::vector<int> v{1,2,3};"
             "int s=0;for(int x:v)s+=x;std::cout<<\"sum \"<<s<<std::endl;}\\n' > hello.cpp")
TWO_C = ("printf 'int twice(int x){return 2*x;}\\n' > lib.c; "
         "printf '#include <stdio.h>\\nint twice(int);\\nint main(void){printf(\"%%d\\\\n\",twice(21));}\\n' > main.c")
MAKEFILE = TWO_C + "; printf 'prog: main.o lib.o\\n\\tcc -o prog main.o lib.o\\n%%.o: %%.c\\n\\tcc -c -o $@ $<\\n' > Makefile"
GIT_REPO = "git init -q -b main src && cd src && echo a > a && git add a && git commit -qm first && echo b > b && " \
           "git add b && git commit -qm second && touch -d @1577836800 a b"
PATCH = WORDS + "; cp f.txt f.new; sed -i s/beta/BETA/ f.new; diff -u f.txt f.new > f.diff || true; rm f.new"

COMMANDS: list[Command] = [
    # shells
    Command("pipeline", "printf 'b\\na\\nc\\na\\n' | sort | uniq -c | sort -rn"),
    Command("process-substitution", "diff <(printf 'a\\nb\\n') <(printf 'a\\nc\\n'); echo status $?"),
    Command("paste-substitution", "paste -d, <(seq 1 3) <(printf 'a\\nb\\nc\\n') | tac"),
    Command("output-substitution", "echo data | tee >(tr a-z A-Z > upper.txt) > /dev/null; wait; "
            "while [ ! -s upper.txt ]; do :; done; cat upper.txt"),
    Command("here-document", "x=world; cat <<EOF\nhello $x\n$(echo nested)\nEOF"),
    Command("here-string", "read a b <<< 'one two'; echo \"$b $a\""),
    Command("subshell-loop", "for i in 1 2 3; do (echo $((i * i))); done | paste -sd,"),
    # dash's own PATH search is left out of its pipelines: a SIGCHLD that arrives before
    # systrace has received a notified stat makes it fail with EINTR (dash's handler has no
    # SA_RESTART), and dash then skips that PATH entry; see README, Known limitations
    Command("dash-pipeline", ("sh", "-c", "echo one two | /usr/bin/tr a-z A-Z")),
    Command("dollar-home-literal", ("sh", "-c", """sh -c 'echo "$HOME"'""")),
    Command("command-substitution", "echo \"files: $(ls | wc -l)\"", WORDS),
    Command("redirections", "echo data > out.txt; cat out.txt; wc -c < out.txt; echo more >> out.txt; cat out.txt"),
    Command("missing-program", "env nosuchprog; echo status $?"),
    Command("exit-status", ("sh", "-c", "false; echo $?; exit 7")),
    # coreutils
    Command("ls", ("ls", "-1", "dir"), TREE),
    Command("ls-long", "ls -ln --time-style=+%s dir | sed 's/  */ /g'", TREE),
    Command("cp-recursive", "cp -r dir copy && ls -R copy", TREE),
    Command("mv", "mv f.txt g.txt; ls", WORDS),
    Command("mkdir-rmdir", "mkdir -p x/y/z && ls -d x/y/z && rmdir -p x/y/z; ls"),
    Command("symlink", "ln -s f.txt link; readlink link; cat link", WORDS),
    Command("stat", ("stat", "-c", "%s %a %n", "f.txt"), WORDS + "; chmod 640 f.txt"),
    Command("du", ("du", "-sb", "dir"), TREE),
    Command("sha256sum", ("sha256sum", "f.txt", "words"), WORDS),
    Command("base64", "base64 words | base64 -d | md5sum", WORDS),
    Command("sort-uniq", "sort -u words; sort words | uniq -d", WORDS),
    Command("head-tail", "head -n2 words; tail -n2 words; tail -c5 words", WORDS),
    Command("cut-passwd", "cut -d: -f1,3 /etc/passwd | head -n1"),
    Command("seq-tac", "seq 1 5 | tac | paste -sd' '"),
    Command("find", "find . -name '*' -type f | sort", TREE),
    Command("date-fixed", ("date", "-u", "-d", "@0", "+%Y-%m-%d %H:%M:%S")),
    Command("touch-date", "touch -d '2021-02-03 04:05:06' f; date -r f +%s", ""),
    Command("mktemp", "d=$(mktemp -d); echo x > \"$d/f\"; cat \"$d/f\"; rm -r \"$d\"; f=$(mktemp -p .); echo y > $f; "
            "cat $f; rm $f"),
    Command("dd", "dd if=/dev/zero of=z bs=1k count=4 status=none; wc -c < z"),
    Command("split", "split -l 2 words part_; ls part_*; cat part_ab", WORDS),
    Command("chmod", "chmod 600 f.txt; stat -c %a f.txt", WORDS),
    Command("truncate", "truncate -s 100 f; wc -c < f"),
    Command("install", "install -m 644 f.txt dest.txt; cat dest.txt; stat -c %a dest.txt", WORDS),
    Command("wc", ("wc", "words", "f.txt"), WORDS),
    Command("yes-head", "yes | head -n3"),
    Command("tee", "echo teed | tee t1 t2 > /dev/null; cat t1 t2"),
    # text tools
    Command("sed-in-place", "sed -i 's/a/A/g' words; cat words", WORDS),
    Command("perl-in-place", "perl -pi -e 's/e/E/g' f.txt; cat f.txt", WORDS),
    Command("awk-sum", "seq 1 100 | awk '{s += $1} END {print s}'"),
    Command("grep", "grep -c apple words; grep -rn one dir | sort", TREE),
    Command("tr-squeeze", "echo 'aaa   bbb' | tr -s ' a'"),
    Command("diff-unified", "cp f.txt g.txt; echo delta >> g.txt; diff f.txt g.txt; echo status $?", WORDS),
    Command("patch", "patch -s f.txt < f.diff; cat f.txt", PATCH),
    Command("sort-in-place", "sort -o words words; cat words", WORDS),
    # archivers and compressors
    Command("tar", "tar cf a.tar dir && tar tf a.tar", TREE),
    Command("tar-gzip", "tar czf a.tgz dir && mkdir out && tar xzf a.tgz -C out && find out | sort", TREE),
    Command("gzip", "gzip -n words && ls && gunzip -c words.gz", WORDS),
    Command("bzip2", "bzip2 -k words && bzcat words.bz2 | md5sum", WORDS),
    Command("xz", "xz -k words && xz -dc words.xz | wc -l", WORDS),
    Command("zip-unzip", "zip -q -X a.zip f.txt words && unzip -p a.zip words && unzip -Z1 a.zip", WORDS),
    Command("ar", "ar rc lib.a f.txt words && ar t lib.a", WORDS),
    # C and C++
    Command("gcc-run", "gcc -o hello hello.c && ./hello; echo status $?", HELLO_C),
    Command("gxx-run", "g++ -o hello hello.cpp && ./hello", HELLO_CXX),
    Command("gcc-separate", "gcc -c lib.c && gcc -c main.c && gcc -o prog main.o lib.o && ./prog", TWO_C),
    Command("make-j2", "make -s -j2 && ./prog", MAKEFILE),
    # python
    Command("python-venv", "python3 -m venv --without-pip v && v/bin/python -c 'import sys; print(sys.prefix != sys.base_prefix)'"),
    Command("py-compile", "printf 'X = 1\\n' > mod.py; python3 -m py_compile mod.py && ls __pycache__"),
    Command("python-multiprocessing", ("python3", "-c", "import multiprocessing as m\nif __name__ == '__main__':\n"
                                       "    with m.Pool(2) as p: print(p.map(abs, [-1, -2, -3]))")),
    Command("python-subprocess", ("python3", "-c", "import subprocess; r = subprocess.run(['sort', 'words'], "
                                  "capture_output=True, text=True); print(r.stdout.split(), r.returncode)"), WORDS),
    Command("python-tempfile", ("python3", "-c", "import tempfile, os\nwith tempfile.TemporaryDirectory() as d:\n"
                                "    open(os.path.join(d, 'x'), 'w').write('t')\n    print(os.listdir(d))")),
    Command("python-json-file", ("python3", "-c", "import json; json.dump({'a': [1, 2]}, open('o.json', 'w')); "
                                 "print(json.load(open('o.json')))")),
    # perl and node
    Command("perl-map", ("perl", "-e", "print join(',', map { $_ * 2 } 1..5), \"\\n\"")),
    Command("perl-filter", ("perl", "-ne", "print if /an/", "words"), WORDS),
    Command("node-eval", ("node", "-e", "console.log([1, 2, 3].map(x => x * 2).join(','))")),
    Command("node-fs", ("node", "-e", "const fs = require('fs'); fs.writeFileSync('n.txt', 'hi'); "
                        "console.log(fs.readFileSync('n.txt', 'utf8'))")),
    # git
    Command("git-init-commit", "git init -q -b main r && cd r && echo a > a && git add a && git commit -qm one && "
            "git log --format='%h %s'"),
    # files dated in the past: a file as new as the index is "racily clean" and git reads
    # it (and its attributes) again, or not, by the clock
    Command("git-branch-merge", "cd src && git checkout -qb topic && echo c > c && touch -d @1577836800 c && git add c && "
            "git commit -qm third && git checkout -q main && echo d > d && touch -d @1577836800 d && git add d && "
            "git commit -qm fourth && "
            "git merge -q --no-edit topic && git log --format=%s | sort && ls", GIT_REPO),
    Command("git-clone-local", "git clone -q src dst && git -C dst log --format='%h %s'", GIT_REPO),
    Command("git-status-diff", "cd src && echo changed >> a && git status --short && git diff --stat", GIT_REPO),
    # sqlite3
    Command("sqlite3-write", ("sqlite3", "db.sqlite", "create table t(x); insert into t values (1), (2); select sum(x) from t;")),
    Command("sqlite3-wal", ("sqlite3", "db.sqlite", "pragma journal_mode=wal; create table t(x); insert into t values (5); "
                            "select * from t;")),
    # loopback network (the test's server on 127.0.0.1)
    Command("curl", "curl -s http://127.0.0.1:$CORPUS_PORT/hello.txt"),
    Command("curl-output", "curl -s -o got.txt http://127.0.0.1:$CORPUS_PORT/hello.txt && cat got.txt"),
    Command("python-http-client", ("python3", "-c", "import os, urllib.request; print(urllib.request.urlopen("
                                   "'http://127.0.0.1:%s/hello.txt' % os.environ['CORPUS_PORT']).read().decode(), end='')")),
    # system tools
    Command("ps", ("sh", "-c", "ps -o comm= -p $$")),
    Command("top", ("sh", "-c", "top -b -n1 -p $$ | tail -n1 | awk '{print $NF}'")),
    # the child is a subshell blocked on a FIFO: it is "sh" from its fork on (no exec to race)
    Command("ps-children", ("sh", "-c", "(read x < f) & ps -o comm= --ppid $$; echo > f; wait"), "mkfifo f"),
    # (from the shell's /proc directory: a pid inside an argv word's /proc path is kept, see README)
    Command("proc-of-the-shell", ("sh", "-c", "cd /proc/$$ && head -1 status; tr '\\0' ' ' < cmdline; echo; "
                                  "cat stat | cut -d' ' -f2")),
    # the shell's pid in an argv word: generalised as a pid of the run (head's reads are
    # decided by relation in head's own policy)
    Command("proc-pid-in-argv", ("sh", "-c", "head -1 /proc/$$/status; grep -c . /proc/$$/cmdline")),
    Command("id", "id -u; id -g; id -un"),
    Command("whoami-groups", "whoami; id -Gn | wc -w"),
    Command("uname", ("uname", "-s", "-m")),
    Command("getent", ("getent", "passwd", "root")),
]
