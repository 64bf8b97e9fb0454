from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from eventbus.asyncapi import as_markdown, as_yaml


class Command(BaseCommand):
    help = "Regenerate docs/asyncapi.yaml and docs/events.md from schemas/*.json."

    def handle(self, *args, **options):
        docs = Path(settings.BASE_DIR) / "docs"
        (docs / "asyncapi.yaml").write_text(as_yaml())
        (docs / "events.md").write_text(as_markdown())
        self.stdout.write(self.style.SUCCESS("wrote docs/asyncapi.yaml and docs/events.md"))
