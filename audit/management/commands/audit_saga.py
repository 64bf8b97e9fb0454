"""`python manage.py audit_saga`: check that the shop, inventory and shipping agree about every order and
that stock adds up (audit/invariants.py). Exits 1 and prints each disagreement if any."""

from django.core.management.base import BaseCommand, CommandError

from audit.invariants import audit, order_views


class Command(BaseCommand):
    help = "Check that every order's status, reservation and shipment agree and that stock is conserved."

    def add_arguments(self, parser):
        parser.add_argument(
            "--moving",
            action="store_true",
            help="the saga is still moving: check only what holds at every moment (no unfinished orders, "
            "no reservations still in flight)",
        )
        parser.add_argument("--order", action="append", default=None, help="check only this order id (repeatable)")

    def handle(self, *args, moving=False, order=None, **options):
        views = order_views(order)
        self.stdout.write(f"auditing {len(views)} orders across the shop, inventory and shipping databases ...")
        findings = audit(order_ids=order, quiet=not moving)
        for finding in findings:
            self.stdout.write(str(finding))
        if findings:
            raise CommandError(
                f"{len(findings)} disagreement(s). If orders are still moving, wait until the consumers are idle "
                "and run it again (or use --moving): a disagreement that persists is real. See the README's "
                "'Reconciling the saga'."
            )
        self.stdout.write(self.style.SUCCESS(f"all {len(views)} orders agree and stock is conserved"))
