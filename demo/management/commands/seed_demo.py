from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from demo.catalog import PRODUCTS
from inventory import services as inventory
from shop.models import Product


class Command(BaseCommand):
    help = "Create the demo catalogue with stock (some scarce); in DEBUG also a staff user admin/admin."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="do nothing when products exist")

    def handle(self, *args, **options):
        if options["if_empty"] and Product.objects.using("shop").exists():
            self.stdout.write("catalogue already seeded")
            return
        for sku, name, description, price, units in PRODUCTS:
            Product.objects.using("shop").update_or_create(
                sku=sku,
                defaults=dict(
                    name=name,
                    description=description,
                    price=Decimal(price),
                    image=f"shop/img/{sku.lower()}.svg",
                    available=units,
                ),
            )
            inventory.set_stock(sku, units)
        self.stdout.write(self.style.SUCCESS(f"{len(PRODUCTS)} products with stock"))
        if settings.DEBUG:
            users = get_user_model().objects
            if not users.filter(username="admin").exists():
                users.create_superuser("admin", "admin@example.com", "admin")
            self.stdout.write("staff login: admin / admin")
