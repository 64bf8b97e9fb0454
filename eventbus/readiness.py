"""Can this process reach Kafka? A cheap metadata round trip on a cached admin client."""

import threading

from . import kafka_io

_lock = threading.Lock()
_admin = None


def kafka_reachable() -> None:
    global _admin
    with _lock:
        try:
            if _admin is None:
                _admin = kafka_io.make_admin()
            _admin.describe_cluster()
        except Exception:
            if _admin is not None:
                try:
                    _admin.close()
                except Exception:
                    pass
            _admin = None
            raise


def close() -> None:
    global _admin
    with _lock:
        if _admin is not None:
            _admin.close()
            _admin = None
