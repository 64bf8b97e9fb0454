from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from eventbus.offset_loss import OffsetsLost
from eventbus.relay import Relay
from eventbus.runner import ConsumerRunner, run_together
from eventbus.service import service


class Command(BaseCommand):
    help = (
        "Run services' consumer loops and outbox relays: one service, or several in one process (each keeps its "
        "own consumer group). Run N copies to share the partitions."
    )

    def add_arguments(self, parser):
        parser.add_argument("services", nargs="+", metavar="service", help="shop, inventory, shipping, dashboard")
        parser.add_argument("--no-relay", action="store_true", help="consume only (another process relays)")
        parser.add_argument(
            "--replay",
            action="store_true",
            help="read every assigned partition again from offset 0 (the inbox skips what was applied)",
        )

    def handle(self, *args, **options):
        names = list(dict.fromkeys(options["services"]))
        try:
            services = [service(name) for name in names]
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        together = len(services) > 1
        relay = not options["no_relay"]
        # Services in one process share one relay (one producer, one thread); a lone service has its own.
        runners = [ConsumerRunner(svc, relay=relay and not together, replay=options["replay"]) for svc in services]
        if together:
            if run_together(runners, relay=Relay(services, settings.OUTBOX_POLL_SECONDS) if relay else None):
                raise CommandError(f"a consumer of {', '.join(names)} stopped on an error (see the log above)")
            return
        runners[0].install_signal_handlers()
        try:
            runners[0].run()
        except OffsetsLost as exc:
            raise CommandError(str(exc)) from None
