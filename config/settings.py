"""Conveyor settings. Every value comes from the environment (a `.env` file is read too); the README lists them."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from config import private as _private
from config import proxies as _proxies

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CONVEYOR_VAR_DIR", BASE_DIR / "var"))
load_dotenv(BASE_DIR / ".env", override=False)  # the caller's environment always wins


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG")
SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(50))'`) "
            "or set DJANGO_DEBUG=1 for development."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"
ALLOWED_HOSTS = [
    h.strip() for h in env("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "").split(",") if h.strip()
]
if DEBUG:
    ALLOWED_HOSTS += ["testserver", "[::1]"]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env("DJANGO_CSRF_TRUSTED_ORIGINS").split(",") if o.strip()]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_prometheus",
    "eventbus",
    "shop",
    "inventory",
    "shipping",
    "dashboard",
    "demo",
    "audit",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ---------------------------------------------------------------- databases: one per bounded app

BOUNDED_APPS = ("shop", "inventory", "shipping", "dashboard")
SQLITE_OPTIONS = {
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so two writers
    # queue on the busy timeout instead of failing with "database is locked" half way through.
    "timeout": float(os.environ.get("SQLITE_BUSY_TIMEOUT", "20")),
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


# Consumers and Celery keep their connections; the ASGI server sets 0 (config/asgi.py).
CONN_MAX_AGE = int(env("DB_CONN_MAX_AGE", "60"))
# Where connections are not kept (the web server), closed SQLite connections wait in a bounded pool per
# file for the next request instead (runtime/sqlite/base.py).
SQLITE_POOL_SIZE = int(env("SQLITE_POOL_SIZE", "16"))


def database(alias: str, var: str) -> dict:
    url = env(var)
    if not url:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{VAR_DIR / f'{alias}.sqlite3'}"
    config = dj_database_url.parse(url, conn_max_age=CONN_MAX_AGE, conn_health_checks=True)
    if config["ENGINE"].endswith("sqlite3"):
        config["ENGINE"] = "runtime.sqlite"  # Django's backend plus a queue for the write lock (see its docstring)
        config["OPTIONS"] = dict(SQLITE_OPTIONS)
        if CONN_MAX_AGE == 0 and SQLITE_POOL_SIZE > 0:
            config["OPTIONS"]["pool"] = SQLITE_POOL_SIZE
        test_dir = env("CONVEYOR_TEST_DB_DIR")
        # Integration tests share their databases with real subprocesses, so they must be files.
        config["TEST"] = {"NAME": str(Path(test_dir) / f"{alias}.sqlite3")} if test_dir else {}
    config.setdefault("TEST", {})["DEPENDENCIES"] = []  # the databases are independent of one another
    return config


DATABASES = {"default": database("default", "DATABASE_URL")}
DATABASES.update({app: database(app, f"{app.upper()}_DATABASE_URL") for app in BOUNDED_APPS})
DATABASE_ROUTERS = ["config.db_router.BoundedAppRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------- auth, i18n, static

AUTH_PASSWORD_VALIDATORS = (
    []
    if DEBUG
    else [
        {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
        {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    ]
)
LOGIN_URL = "/admin/login/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# production hardening (DJANGO_DEBUG=0)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = not DEBUG and env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 0 if DEBUG else int(env("DJANGO_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
# Probes and scrapers call the web directly over HTTP (a redirect is a failed probe); they carry no cookies.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Reverse proxies in front of the web (config/proxies.py): "" none, a count ("1"), or networks
# ("10.0.0.0/8,192.0.2.1"). Only then is X-Forwarded-Proto believed; from anyone else it is removed.
TRUSTED_PROXIES = env("TRUSTED_PROXIES")
_proxies.TrustedProxies.parse(TRUSTED_PROXIES)  # a malformed value stops the start with what to write
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXIES.strip() else None
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy of every HTML page (config/csp.py): own-origin scripts and styles, nothing inline.
CONTENT_SECURITY_POLICY = None  # None: config.csp.DEFAULT_POLICY; or a dict of directive -> list of sources
CONTENT_SECURITY_POLICY_REPORT_ONLY = env_bool("CONTENT_SECURITY_POLICY_REPORT_ONLY", False)

# ---------------------------------------------------------------- Kafka, Redis, Celery, Channels

KAFKA = {
    "bootstrap_servers": env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
    "security_protocol": env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
    "sasl_mechanism": env("KAFKA_SASL_MECHANISM") or None,
    "sasl_plain_username": env("KAFKA_SASL_USERNAME") or None,
    "sasl_plain_password": env("KAFKA_SASL_PASSWORD") or None,
    "ssl_cafile": env("KAFKA_SSL_CAFILE") or None,
}
KAFKA_TOPIC_PARTITIONS = int(env("KAFKA_TOPIC_PARTITIONS", "6"))
KAFKA_TOPIC_PREFIX = env("KAFKA_TOPIC_PREFIX")  # lets test runs share a broker without sharing topics
# The relay wakes on each commit (in-process, or through Redis from the web and Celery); its poll only
# catches a missed wake-up (Redis away). Every 50 ms, the idle polls were half of each consumer's idle CPU.
OUTBOX_POLL_SECONDS = float(env("OUTBOX_POLL_SECONDS", "0.5"))
# Chaos switches (pause, slow or fail a service's consumer from the service map; eventbus/chaos.py): for
# development and rehearsals only, so off unless asked for.
CHAOS_ENABLED = DEBUG or env_bool("CONVEYOR_CHAOS")
# Retention of our own tables, all in this one place (docs/deploy.md). Kafka keeps records 7 days (the broker's
# log.retention.hours=168, broker/launch.py): an inbox row must outlive every redelivery Kafka can still make,
# so inboxes keep 30 days. Personal data (email, name, address) in the dashboard's event log and dead letters
# is scrubbed after 30 days; the events stay, without it. Sent outbox rows are history: 7 days.
INBOX_RETENTION_DAYS = int(env("INBOX_RETENTION_DAYS", "30"))
PERSONAL_DATA_RETENTION_DAYS = int(env("PERSONAL_DATA_RETENTION_DAYS", "30"))
OUTBOX_RETENTION_DAYS = int(env("OUTBOX_RETENTION_DAYS", "7"))
KAFKA_RETENTION_DAYS = 7  # what the broker keeps; the inbox must keep longer
if INBOX_RETENTION_DAYS <= KAFKA_RETENTION_DAYS:
    raise ImproperlyConfigured(
        f"INBOX_RETENTION_DAYS={INBOX_RETENTION_DAYS} must be longer than Kafka's retention ({KAFKA_RETENTION_DAYS} "
        "days): a redelivered event must still find its inbox row. Raise it, e.g. to 30"
    )
# A consumer whose committed offset retention deleted: "fail" (stop, say so) or "earliest-with-marker" (go on
# from the earliest record and dead-letter a marker saying how many offsets were skipped). eventbus/offset_loss.py
KAFKA_OFFSET_RESET = env("KAFKA_OFFSET_RESET", "fail")
if KAFKA_OFFSET_RESET not in ("fail", "earliest-with-marker"):
    raise ImproperlyConfigured(
        f"KAFKA_OFFSET_RESET={KAFKA_OFFSET_RESET!r}: write 'fail' (stop a consumer whose committed offset is gone) "
        "or 'earliest-with-marker' (go on from the earliest record and dead-letter a marker)"
    )
# /metrics reads every group's lag from the broker (eventbus/lag_scrape.py): cached this long, and a scrape
# waits at most this long for the broker before answering conveyor_group_lag_up 0.
CONSUMER_LAG_CACHE_SECONDS = float(env("CONSUMER_LAG_CACHE_SECONDS", "5"))
CONSUMER_LAG_SCRAPE_TIMEOUT_SECONDS = float(env("CONSUMER_LAG_SCRAPE_TIMEOUT_SECONDS", "3"))

# Each bounded app's wiring, found by run_consumer (the event bus never imports an app by name).
CONVEYOR_SERVICES = {app: f"{app}.wiring.SERVICE" for app in BOUNDED_APPS}

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 times reads out after 5 s, exactly how long the layer blocks waiting for a message:
        # without a longer socket timeout every idle websocket dies (channels_redis#422).
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}], "capacity": 1000, "expiry": 30},
    }
}
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes every database connection before and after each task unless this is set:
# a fresh SQLite connection per courier step. config/celery.py drops broken or old ones instead, as Django
# does around a request; the fixup then closes them only every this many tasks.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
SHIPPING_STEP_SECONDS = float(env("SHIPPING_STEP_SECONDS", "0"))
# A reservation held this long asks shipping to cancel its order (inventory.expire_reservations, by beat).
RESERVATION_HOURS = float(env("RESERVATION_HOURS", "24"))
# How long an Idempotency-Key (or a checkout's nonce) keeps answering with the order it placed.
IDEMPOTENCY_KEY_HOURS = float(env("IDEMPOTENCY_KEY_HOURS", "24"))
ORDER_RATE_LIMIT = env("ORDER_RATE_LIMIT", "" if DEBUG else "30/m")
# An order's token (API and private link) stops working this many days after the order; 0: never.
ORDER_TOKEN_MAX_AGE_DAYS = int(env("ORDER_TOKEN_MAX_AGE_DAYS", "180"))

# ---------------------------------------------------------------- operator endpoints

# /metrics and the detail of /readyz answer only to these networks or to `Authorization: Bearer <token>`;
# everyone else gets /readyz's status code alone. /healthz is public.
CONVEYOR_PRIVATE_NETWORKS = _private.parse_networks(env("CONVEYOR_PRIVATE_NETWORKS", "127.0.0.0/8,::1/128"))
CONVEYOR_METRICS_TOKEN = env("CONVEYOR_METRICS_TOKEN")
# Open public sockets (/ws/stock/, /ws/orders/) one client address may hold per web process; 0: no limit.
WS_CONNECTIONS_PER_CLIENT = int(env("WS_CONNECTIONS_PER_CLIENT", "20"))
# How often a dashboard socket checks that its user is still active staff (it also checks on each message).
DASHBOARD_STAFF_RECHECK_SECONDS = float(env("DASHBOARD_STAFF_RECHECK_SECONDS", "30"))

# ---------------------------------------------------------------- logging

LOG_FORMAT = env("LOG_FORMAT", "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "kafka": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}
