"""How long to wait before each retry of something that is away (the broker, a database, Redis): half a
second, doubling, at most ten seconds."""

FIRST_SECONDS = 0.5
MOST_SECONDS = 10.0


def next_delay(delay: float | None = None) -> float:
    """The wait after one of `delay` seconds (None: the first wait)."""
    return FIRST_SECONDS if delay is None else min(max(delay * 2, FIRST_SECONDS), MOST_SECONDS)
