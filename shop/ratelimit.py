"""Per-client limit on placing orders (API and checkout): a fixed window counted in Redis.

settings.ORDER_RATE_LIMIT is "<count>/<s|m|h>" (e.g. "30/m"); empty means off. Redis being away must
never stop the shop taking orders, so every Redis error lets the request through (fail open) and logs.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("shop.ratelimit")
PERIODS = {"s": 1, "m": 60, "h": 3600}
RATE = re.compile(r"^\s*(\d+)\s*/\s*([smh])\s*$")
TIMEOUT_SECONDS = 0.25  # a slow Redis must not make the checkout slow


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # seconds until the window ends, when not allowed


ALLOWED = Verdict(True)


def parse_rate(rate: str) -> tuple[int, int] | None:
    """'30/m' -> (30, 60); '' -> None (off). A malformed rate is a configuration error."""
    if not (rate or "").strip():
        return None
    match = RATE.match(rate)
    if not match:
        raise ValueError(f"ORDER_RATE_LIMIT must look like '30/m' (count per s, m or h), not {rate!r}")
    return int(match.group(1)), PERIODS[match.group(2)]


def client_ip(request) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says unless a trusted proxy sets it.
    return request.META.get("REMOTE_ADDR") or "unknown"


def check_order_rate(request) -> Verdict:
    rate = parse_rate(getattr(settings, "ORDER_RATE_LIMIT", ""))
    if rate is None:
        return ALLOWED
    limit, period = rate
    now = _now()
    window = int(now // period)
    key = f"conveyor:ratelimit:orders:{client_ip(request)}:{period}:{window}"
    try:
        pipe = _client(settings.REDIS_URL).pipeline()
        pipe.incr(key)
        pipe.expire(key, period + 1, nx=True)  # the key outlives its window by a second, then goes
        count = pipe.execute()[0]
    except (redis.RedisError, OSError) as exc:
        log.warning("order rate limit skipped, Redis unavailable: %r", exc)
        return ALLOWED
    if count <= limit:
        return ALLOWED
    return Verdict(False, max(1, math.ceil((window + 1) * period - now)))


def _now() -> float:
    return time.time()


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # One try, no backoff: when Redis is away the order goes through at once instead of after retries.
    return redis.Redis.from_url(
        url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0)
    )
