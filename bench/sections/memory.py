"""Section 7: the peak RSS (`VmHWM`) of every process the bench started."""

from __future__ import annotations

from bench.common import say


def run(b) -> None:
    b.procs.remember_peaks()
    peaks = {k: v for k, v in b.procs.peaks.items() if not k.startswith(("py-spy", "ws-"))}
    b.result["rss_mb"] = peaks
    say("7 peak RSS (MB): " + ", ".join(f"{k} {v}" for k, v in sorted(peaks.items())))
