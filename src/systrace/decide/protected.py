"""Files no policy may change for the tracee: the cgroup files that could freeze, kill,
limit or move systrace. Pure: the caller gives the mounts and systrace's cgroups."""

from __future__ import annotations

# Writing a pid here moves that process: a write's content is not seen, so systrace's
# pid cannot be told apart from the tracee's own, and every such file is refused.
MOVES = ("cgroup.procs", "cgroup.threads", "tasks")


def on_cgroup_mount(path: str, cgroup_points: list[str]) -> bool:
    return any(path.startswith(point.rstrip("/") + "/") for point in cgroup_points)


def cgroup_change_refused(path: str, holding: list[str]) -> str | None:
    """Why a change of `path`, on a cgroup mount, is refused (None: it is not)."""
    directory, _, name = path.rpartition("/")
    if name in MOVES:
        return "moves processes between cgroups (systrace's could be one), whatever the policy says"
    if directory in holding:
        return "a cgroup that holds systrace (freeze, kill, limits), whatever the policy says"
    return None
