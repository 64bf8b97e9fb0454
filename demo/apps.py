from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The composition root for demo data and load: the one place allowed to call every app's services."""

    name = "demo"
