"""Summarise py-spy's collapsed stacks (`-f raw`): where each process spends its samples.

python bench/profile_summary.py var/bench/run/profile-*.txt
"""

from __future__ import annotations

import linecache
import re
import sys
from collections import Counter
from functools import cache
from pathlib import Path

# Leaves that are a thread waiting (py-spy's idle detection misses some of them): left out of "busy".
WAITS = (
    "select (selectors.py)",
    "Condition.wait",
    "_read_from_socket",
    "_worker (concurrent/futures",
    "_epoll.poll",
    "time.sleep",
    "Event.wait",
    "lock.acquire",
    "sleep (",
    "poll (selectors.py)",
)
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")
# py-spy shows no frame for a function written in C, so a thread in `time.sleep(...)` or `event.wait()`
# leaves the Python line that called it as its leaf, and py-spy's idle detection misses some of those
# samples: a leaf whose source line calls one of these blocking functions is a thread waiting. (Not
# `join(`: a leaf on `", ".join(...)` is str.join at work.)
BLOCKING_CALL = re.compile(r"\b(sleep|wait|recv|recv_into|accept|acquire|select|poll)\(")
ROOT = Path(__file__).resolve().parent.parent


def _short(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m['func']} ({path})"


@cache
def _blocked_in_c(frame: str) -> bool:
    """Whether a leaf frame's source line calls a blocking C function (the file found as py-spy names it:
    absolute, or relative to the project or to an entry of sys.path, i.e. the standard library and the
    virtualenv's packages, which the profiled processes share with this one)."""
    m = FRAME.match(frame.strip())
    if not m or not m["line"]:
        return False
    name = m["file"]
    for base in (Path("/"), ROOT, *(Path(p) for p in sys.path if p)):
        candidate = base / name
        if candidate.is_file():
            return bool(BLOCKING_CALL.search(linecache.getline(str(candidate), int(m["line"]))))
    return False


def summarise(path: Path, top: int = 25) -> str:
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = waiting = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        raw = [f for f in stack.split(";") if f.strip()]
        frames = [_short(f) for f in raw]
        if not frames or any(w in frames[-1] for w in WAITS) or _blocked_in_c(raw[-1]):
            waiting += n
            continue
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    busy = total - waiting
    if not busy:
        return f"== {path.name}: no busy samples\n"
    out = [f"== {path.name}: {busy} busy samples of {total} (the rest wait on a socket, lock or queue)", "-- self"]
    out += [f"{100 * n / busy:5.1f}%  {f}" for f, n in own.most_common(top)]
    out.append("-- inclusive, % of busy samples (project code and the big libraries)")
    keep = (
        "eventbus",
        "shop/",
        "inventory/",
        "shipping/",
        "dashboard/",
        "kafka/",
        "django/db",
        "cloudevents",
        "sqlite",
    )
    rows = [(f, n) for f, n in inclusive.most_common(400) if any(k in f for k in keep)]
    out += [f"{100 * n / busy:5.1f}%  {f}" for f, n in rows[:top]]
    return "\n".join(out) + "\n"


def main(paths: list[str]) -> None:
    for path in paths:
        print(summarise(Path(path)))


if __name__ == "__main__":
    main(sys.argv[1:])
