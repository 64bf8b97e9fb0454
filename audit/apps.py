from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The composition root for reconciliation: the one place that reads every bounded app's database, to
    check that the services agree about each order (`manage.py audit_saga`). It writes nothing."""

    name = "audit"
