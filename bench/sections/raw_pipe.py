"""Section 1: kafka-python produce → consume of order-sized messages on the same broker (and confluent-kafka)."""

from __future__ import annotations

import os


def run(b) -> None:
    from bench import raw_pipe

    out = raw_pipe.run(os.environ["KAFKA_BOOTSTRAP_SERVERS"], b.prefix, b.size["raw"])
    b.result["sections"]["raw_pipe"] = out
    b.result["raw_pipe_events_per_s"] = out["kafka_python"]["events_per_s"]
    b.result["produce_ack_p50_ms"] = out["produce_ack_ms"]["p50"]
    b.result["produce_ack_p99_ms"] = out["produce_ack_ms"]["p99"]
    if "confluent_kafka" in out:
        b.result["raw_pipe_confluent_events_per_s"] = out["confluent_kafka"]["events_per_s"]
