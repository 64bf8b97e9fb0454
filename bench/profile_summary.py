"""Summarise py-spy's collapsed stacks (`-f raw`): where each process spends its samples.

python bench/profile_summary.py var/bench/run/profile-*.txt
"""

from __future__ import annotations

import re
import sys
from collections import Counter
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
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::\d+)?\)$")


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
        frames = [_short(f) for f in stack.split(";") if f.strip()]
        if not frames or any(w in frames[-1] for w in WAITS):
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
