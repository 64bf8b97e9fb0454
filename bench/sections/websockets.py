"""Section 4: channel-layer fan-out, then 20 and 100 staff browsers on /ws/dashboard/ while orders flow."""

from __future__ import annotations

import subprocess
import time

from bench.common import PYTHON, cpu_seconds, say, wait_until
from bench.harness import consumer_process_of, result_line
from bench.sections.saga import place, wait_done


def run(b) -> None:
    from bench.fanout import group_send_bench

    frames = 2000 if not b.args.quick else 500
    say(f"4 websockets: raw channel-layer group_send of {frames} frames to 20 receivers ...")
    raw = group_send_bench(20, frames)
    b.result["sections"]["group_send"] = raw
    b.result["group_send_frames_per_s"] = raw["frames_per_s"]
    b.result["group_send_p99_ms"] = raw["latency_ms"]["p99"]
    say(f"  group_send {raw['frames_per_s']:.0f} frames/s, p99 {raw['latency_ms']['p99']} ms, lost {raw['lost']}")
    runs = {}
    runs[20] = ws_run(b, 20, b.size["ws"], 400_000 + 20 * 10_000)
    # 100 staff browsers while the saga runs at 80 % of its capacity (open loop); when the capacity section
    # did not run, at the last --rate given, else at the burst's pace.
    rate = (b.result.get("latency_rates") or {}).get("80") or (b.args.rate[-1] if b.args.rate else None)
    orders = int(rate * b.size["ws_s"]) if rate else b.size["ws"]
    runs[100] = ws_run(b, 100, orders, 400_000 + 100 * 10_000, rate=rate)
    b.result["sections"]["websockets"] = {str(k): v for k, v in runs.items()}
    b.result["ws_clients"] = runs[100]["held"]
    b.result["ws_clients_held_of_20"] = runs[20]["held"]
    b.result["ws_frames_per_s"] = runs[20]["batch_frames_per_s"]
    b.result["ws_all_frames_per_s"] = runs[20]["frames_per_s"]
    b.result["ws_events_per_s"] = runs[20]["events_per_s"]
    b.result["ws_frames_lost"] = runs[20]["frames_lost"] + runs[100]["frames_lost"]
    b.result["ws_commit_to_frame_p99_ms"] = runs[20]["commit_to_frame_p99_ms"]
    b.result["ws_commit_to_frame_p99_ms_100"] = runs[100]["commit_to_frame_p99_ms"]
    runs[100]["rate"] = rate
    runs[100]["loadavg"] = b.loadavg()
    b.result["ws_100"] = {"rate": rate} | {
        k: runs[100][k] for k in ("held", "frames_per_s", "events_per_s", "frames_lost", "commit_to_frame_p99_ms")
    }


def ws_run(b, clients: int, orders: int, offset: int, rate: float | None = None) -> dict:
    from django.db.models import Max

    from dashboard.models import EventLog

    final = b.run_dir / f"ws-{clients}.final"
    name = f"ws-{clients}"
    b.procs.start(
        name,
        [
            PYTHON,
            "bench/ws_clients.py",
            "--port",
            str(b.web_port),
            "--cookie",
            b.session_key,
            "--clients",
            str(clients),
            "--final-seq-file",
            str(final),
        ],
    )
    log = b.procs.logdir / f"{name}.log"
    wait_until(lambda: b.procs.check_alive(name) or "READY" in log.read_text(), 90, f"{clients} websocket clients")
    pace = f"at {rate:.1f}/s" if rate else "as fast as possible"
    say(f"  {clients} staff clients on /ws/dashboard/; placing {orders} orders {pace} ...")
    # Where the cores go while the browsers follow: the web that sends the frames, the clients' own process
    # (on a real deployment each browser has its own machine), the dashboard consumer that builds them.
    followed = ("web", name, consumer_process_of("dashboard"))
    watched = {each: proc.pid for each, proc in b.procs.running.items() if each in followed}
    cpu_before = {each: cpu_seconds(pid, descendants=True) for each, pid in watched.items()}
    began = time.monotonic()
    ids = place(b, orders, rate, offset)
    wait_done(b, ids, 300)
    cores = {
        each: round((cpu_seconds(pid, descendants=True) - cpu_before[each]) / (time.monotonic() - began), 2)
        for each, pid in watched.items()
    }

    def settled():
        top = EventLog.objects.using("dashboard").aggregate(m=Max("seq"))["m"] or 0
        time.sleep(1.0)
        return top == (EventLog.objects.using("dashboard").aggregate(m=Max("seq"))["m"] or 0) and top

    top = wait_until(settled, 120, "the dashboard to settle")
    final.write_text(str(top))
    try:
        b.procs.running[name].wait(90)
    except subprocess.TimeoutExpired:
        pass
    b.procs.stop(name)
    result = result_line(log) | {"cores_by_process": cores}
    say(
        f"  {clients} clients: held {result['held']}, {result['frames_per_s']:.0f} frames/s "
        f"({result['events_per_s']:.0f} events/s), lost {result['frames_lost']}, "
        f"commit→frame p99 {result['commit_to_frame_p99_ms']} ms; cores used: {cores}"
    )
    return result
