"""The benchmark's rules, without a broker: when an open-loop probe counts as sustained, how runs are
summarised, how deliveries are counted from committed offsets, what the capacity search returns, which
profile samples count as busy, how a layout of the saga's consumers is read and which goals a run judged."""

from bench import kafka_handlers, profile_summary
from bench.deliveries import delta
from bench.report import goals
from bench.sections import capacity


def sustained(**overrides) -> list[str]:
    probe = dict(rate=100.0, achieved=99.5, p99_mid=80.0, p99_last=95.0, drained_after_end=0.4, undelivered=0)
    return capacity.verdict(**{**probe, **overrides})


def test_a_probe_on_schedule_with_a_steady_p99_and_a_prompt_drain_is_sustained():
    assert sustained() == []


def test_a_generator_under_99_percent_of_the_schedule_fails_the_probe():
    assert sustained(achieved=98.9) == ["achieved 98.9/s < 99% of 100.0/s"]


def test_a_p99_growing_past_a_quarter_fails_the_probe():
    assert sustained(p99_last=100.1) and not sustained(p99_last=100.0)


def test_a_late_drain_or_a_lost_order_fails_the_probe():
    assert sustained(drained_after_end=2.1) == ["last delivery 2.1s after the end (> 2s)"]
    assert sustained(undelivered=1) == ["1 orders of the window not delivered"]


def test_deliveries_are_the_sum_over_groups_of_committed_offsets_moved():
    before = {("g.shop", "t", 0): 10, ("g.inventory", "t", 0): 7}
    after = {("g.shop", "t", 0): 15, ("g.inventory", "t", 0): 12, ("g.inventory", "u", 1): 4}
    assert delta(before, after) == 5 + 5 + 4  # a partition first committed during the run counts from 0


def test_runs_are_summarised_by_their_median_with_the_p99_spread():
    runs = [
        {"rate": 50.0, "achieved_rate": a, "loadavg": [1.0], "lat": {"p50": p, "p95": p * 2, "p99": p * 3, "n": 10}}
        for a, p in ((49.9, 10.0), (50.0, 30.0), (49.7, 20.0))
    ]
    out = capacity._summary(runs, "lat")
    assert (out["p50"], out["p95"], out["p99"]) == (20.0, 40.0, 60.0)
    assert out["p99_spread"] == [30.0, 90.0]
    assert (out["achieved_rate"], out["samples"], out["runs"]) == (49.9, 30, 3)


def test_the_search_goes_up_while_probes_pass_then_bisects(monkeypatch):
    limit = 130.0

    def probe(b, rate, **_):
        return {"rate": rate, "sustained": rate <= limit, "achieved_rate": rate, "failed": []}

    monkeypatch.setattr(capacity, "open_loop", probe)
    found, tried = capacity.search(None, 50.0, warm=1, seconds=1, probes=5, offset=0, tag="t")
    assert [p["rate"] for p in tried] == [50.0, 75.0, 112.5, 168.75, 168.75, 140.625, 140.625]  # a fail, twice
    assert found == 112.5


def test_a_rate_whose_probe_fails_once_and_passes_once_is_sustained(monkeypatch):
    unlucky = {75.0}  # the first probe at 75/s meets a noisy moment

    def probe(b, rate, **_):
        failed = ["a noisy moment"] if rate in unlucky else [] if rate <= 100.0 else ["too fast"]
        unlucky.discard(rate)
        return {"rate": rate, "sustained": not failed, "achieved_rate": rate, "failed": failed}

    monkeypatch.setattr(capacity, "open_loop", probe)
    found, tried = capacity.search(None, 50.0, warm=1, seconds=1, probes=3, offset=0, tag="t")
    assert [(p["rate"], p["sustained"]) for p in tried] == [
        (50.0, True),
        (75.0, False),
        (75.0, True),
        (112.5, False),
        (112.5, False),
    ]
    assert found == 75.0
    assert capacity._bound(tried) == "first failure: too fast"  # not the failure below the capacity


def test_the_bound_is_a_failure_above_the_capacity_not_an_unlucky_probe_at_its_rate():
    def probe(rate, failed):
        return {"rate": rate, "sustained": not failed, "failed": failed}

    tried = [probe(438.2, ["too fast"]), probe(401.7, ["a noisy moment"]), probe(401.7, [])]
    assert capacity._bound(tried) == "first failure: too fast"


def test_the_scale_out_search_steps_down_by_the_given_factor_until_a_probe_passes(monkeypatch):
    limit = 70.0

    def probe(b, rate, **_):
        return {"rate": rate, "sustained": rate <= limit, "achieved_rate": rate, "failed": []}

    monkeypatch.setattr(capacity, "open_loop", probe)
    found, tried = capacity.search(None, 100.0, warm=1, seconds=1, probes=4, offset=0, tag="t", down=0.8)
    assert [round(p["rate"], 2) for p in tried] == [100.0, 100.0, 80.0, 80.0, 64.0, 72.0, 72.0]
    assert found == 64.0


def test_scale_out_orders_draw_distinct_products_of_the_generated_catalogue():
    from bench.sections import scale

    orders = [scale.scale_order_fields(i) for i in range(2000)]
    skus = [[line["sku"] for line in order["lines"]] for order in orders]
    assert all(len(set(each)) == len(each) in (2, 3) for each in skus)
    assert {sku for each in skus for sku in each} <= {scale.catalogue_sku(k) for k in range(scale.CATALOGUE)}
    assert len({sku for each in skus for sku in each}) > 0.9 * scale.CATALOGUE  # spread over the catalogue
    assert scale.scale_order_fields(7) == orders[7]  # repeatable


def test_a_thread_sleeping_or_waiting_in_a_c_call_is_not_a_busy_sample(tmp_path):
    # py-spy shows the Python line that called time.sleep or recv as the leaf, not the C function
    source = tmp_path / "sampler.py"
    source.write_text(
        "def run(sock):\n    while True:\n        time.sleep(2)\n        work()\n        sock.recv(1)\n"
        '        log(", ".join(parts))\n'
    )
    raw = tmp_path / "profile-x.txt"
    raw.write_text(
        f'process 1:"python x";Thread.run (threading.py:982);run ({source}:3) 30\n'
        f'process 1:"python x";Thread.run (threading.py:982);run ({source}:4) 10\n'
        f'process 1:"python x";Thread.run (threading.py:982);run ({source}:5) 5\n'
        f'process 1:"python x";Thread.run (threading.py:982);run ({source}:6) 2\n'  # str.join works, not waits
    )
    assert "12 busy samples of 47" in profile_summary.summarise(raw)


def test_a_consumer_layout_hosts_every_service_once(monkeypatch):
    import pytest

    from bench import harness

    monkeypatch.setattr(harness, "LAYOUT", "shop+inventory,shipping+dashboard")
    assert harness.consumer_processes() == {
        "shop+inventory": ["shop", "inventory"],
        "shipping+dashboard": ["shipping", "dashboard"],
    }
    assert harness.consumer_process_of("dashboard") == "shipping+dashboard"
    monkeypatch.setattr(harness, "LAYOUT", "combined")
    assert harness.consumer_processes() == {"consumers": ["shop", "inventory", "shipping", "dashboard"]}
    for wrong in ("shop+inventory,shipping", "shop+inventory,shipping+dashboard+shop", "shop,inventory,shipping,web"):
        monkeypatch.setattr(harness, "LAYOUT", wrong)
        with pytest.raises(SystemExit, match="must name each of"):
            harness.consumer_processes()


def test_a_goal_this_run_did_not_measure_is_neither_met_nor_missed():
    verdicts = {
        g["goal"]: g["pass"] for g in goals({"capacity_orders_per_s": 393.3, "duplicates_double_reservations": 0})
    }
    assert verdicts["capacity (open loop, sustained)"] is False
    assert verdicts["10% redeliveries → double reservations"] is True
    assert verdicts["saga ÷ bare CPU-ms per delivery"] is None
    assert verdicts["dashboard frames lost (20 + 100 clients)"] is None
    assert verdicts["max consumer RSS"] is None


def test_a_brokers_request_handlers_are_found_in_its_thread_dump():
    dump = (
        '"data-plane-kafka-request-handler-0" #32 daemon prio=5 os_prio=0 cpu=27.58ms elapsed=78.59s '
        "tid=0x00007f5d28eac620 nid=0x5a46 waiting on condition  [0x00007f5d110fe000]\n"
        '"data-plane-kafka-network-thread-1-PLAINTEXT-PLAINTEXT-0" #44 prio=5 os_prio=0 cpu=974.67ms '
        "elapsed=78.11s tid=0x00007f5d290c1610 nid=0x5a72 runnable  [0x00007f5c90afe000]\n"
        '"data-plane-kafka-request-handler-1" #70 daemon prio=5 os_prio=0 cpu=895.07ms elapsed=78.33s '
        "tid=0x00007f5d290b4ed0 nid=0x5a6a waiting on condition  [0x00007f5c912fe000]\n"
    )
    assert kafka_handlers.handler_ids(dump) == [0x5A46, 0x5A6A]
