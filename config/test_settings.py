"""Settings for `make test`: development defaults, file-based test databases (shared with the real
subprocesses of the integration tests), a topic prefix per run."""

import os
import tempfile
import time

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("SHIPPING_STEP_SECONDS", "0")
os.environ.setdefault("LOG_LEVEL", "WARNING")
if "CONVEYOR_TEST_DB_DIR" not in os.environ:
    os.environ["CONVEYOR_TEST_DB_DIR"] = tempfile.mkdtemp(prefix="conveyor-test-db-")
os.environ.setdefault("KAFKA_TOPIC_PREFIX", f"t{int(time.time())}-{os.getpid()}.")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
