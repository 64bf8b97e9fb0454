from django.core.management.base import BaseCommand, CommandError

from config.heap import freeze_startup_objects
from eventbus.offset_loss import OffsetsLost
from eventbus.runner import ConsumerRunner
from eventbus.service import service


class Command(BaseCommand):
    help = "Run one service's consumer loop and its outbox relay. Run N copies to share the partitions."

    def add_arguments(self, parser):
        parser.add_argument("service", help="shop, inventory, shipping or dashboard")
        parser.add_argument("--no-relay", action="store_true", help="consume only (another process relays)")
        parser.add_argument(
            "--replay",
            action="store_true",
            help="read every assigned partition again from offset 0 (the inbox skips what was applied)",
        )

    def handle(self, *args, **options):
        try:
            svc = service(options["service"])
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        runner = ConsumerRunner(svc, relay=not options["no_relay"], replay=options["replay"])
        runner.install_signal_handlers()
        freeze_startup_objects()
        try:
            runner.run()
        except OffsetsLost as exc:
            raise CommandError(str(exc)) from None
