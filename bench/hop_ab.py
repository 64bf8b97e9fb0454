"""Each consumer hop's CPU per delivered event, with `eventbus.rows`' helpers against the plain ORM, and with
the heap loaded at start frozen or not: the same recorded events replayed through the real Dispatcher of
each service, the variants alternating in one process, round after round.

    .venv/bin/python -m bench.hop_ab [--orders 200] [--rounds 3] [--reps 3] [--batch 5] [--variants rows,orm:all,...]

First a recording: N orders placed and carried through the whole saga on the in-memory bus (Celery steps
inline); each service's input is kept in the order it was delivered, with the databases as they were just
after the orders were placed. Then each round is a fresh process that runs every variant `--reps` times in
turn (after one uncounted warm-up run), on those databases restored before each run: `rows` as the code
is, `orm:<helper>` with that helper swapped for its ORM equivalent wherever the apps call it (`orm:all`:
every one), `freeze` with `gc.freeze()` after start. Each service's input goes through in batches of
`--batch` events (a consumer keeping up with a trickle handles a few at a time). The variants must leave
the same rows, or the run fails. No Kafka: the figures are the handlers' and the dispatcher's part of a hop.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "var" / "bench" / "hop_ab"
ALIASES = ("default", "shop", "inventory", "shipping", "dashboard")
HOPS = ("shop", "inventory", "shipping", "dashboard")
APP_MODULES = ("shop.services", "inventory.services", "shipping.services", "dashboard.handlers", "dashboard.read_model")
HELPERS = ("insert_rows", "update_rows", "locked_rows", "add_to_rows", "present_values", "present_keys")


def _env(db_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="hop-ab",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="ERROR",
        SHIPPING_STEP_SECONDS="0",
        DATABASE_URL=f"sqlite:///{db_dir / 'default.sqlite3'}",
    )
    for alias in ALIASES[1:]:
        env[f"{alias.upper()}_DATABASE_URL"] = f"sqlite:///{db_dir / f'{alias}.sqlite3'}"
    env.pop("CONVEYOR_TEST_DB_DIR", None)
    return env


def _copy(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for alias in ALIASES:
        shutil.copy2(src / f"{alias}.sqlite3", dst / f"{alias}.sqlite3")


# ---------------------------------------------------------------- the ORM equivalents of eventbus.rows


def orm_helpers() -> dict:
    from django.db.models import F, Q

    def insert_rows(objs, *, using, learn_pks=False):
        objs = list(objs)
        if objs:
            type(objs[0]).objects.using(using).bulk_create(objs)

    def update_rows(objs, fields, *, using):
        objs = list(objs)
        if not objs:
            return
        model = type(objs[0])
        for name in fields:  # bulk_update does not call pre_save: auto_now fields are set here, as save() would
            field = model._meta.get_field(name)
            if getattr(field, "auto_now", False):
                for obj in objs:
                    field.pre_save(obj, add=False)
        model.objects.using(using).bulk_update(objs, fields)

    def locked_rows(model, keys, *, using):
        return list(model.objects.using(using).select_for_update().filter(pk__in=list(keys)).order_by("pk"))

    def add_to_rows(model, field_name, amounts, *, using, at_most=None):
        missing = []
        for key, amount in sorted(amounts.items()):
            if amount:
                rows = model.objects.using(using).filter(pk=key)
                if at_most is not None:
                    rows = rows.filter(**{f"{at_most}__gte": F(field_name) + amount})
                if not rows.update(**{field_name: F(field_name) + amount}):
                    missing.append(key)
        return missing

    def present_values(model, field_name, candidates, *, using, **equal):
        rows = model.objects.using(using).filter(**equal, **{f"{field_name}__in": candidates})
        return {str(v) for v in rows.values_list(field_name, flat=True)}

    def present_keys(model, fields, keys, *, using):
        groups: dict[tuple, list] = {}
        for key in keys:
            groups.setdefault(tuple(key[:-1]), []).append(key[-1])
        if not groups:
            return set()
        where = Q()
        for head, tails in groups.items():
            where |= Q(**dict(zip(fields[:-1], head, strict=True)), **{f"{fields[-1]}__in": tails})
        return set(model.objects.using(using).filter(where).values_list(*fields))

    return {
        "insert_rows": insert_rows,
        "update_rows": update_rows,
        "locked_rows": locked_rows,
        "add_to_rows": add_to_rows,
        "present_values": present_values,
        "present_keys": present_keys,
    }


# ---------------------------------------------------------------- child processes


def _django() -> None:
    import logging

    import django

    django.setup()
    logging.disable(logging.CRITICAL)
    from config.celery import app

    app.conf.task_always_eager = True  # the courier's steps run inline, as in the saga's unit tests


def record(orders: int) -> None:
    """Place the orders, keep the databases as they are then, carry the saga through, keep each hop's input."""
    _django()
    from django.db import connections

    from demo.catalog import PRODUCTS
    from eventbus import dispatch
    from eventbus.testing import InMemoryBus
    from inventory import services as inventory
    from shop import services as shop
    from shop.models import Product

    Product.objects.using("shop").bulk_create(
        [Product(sku=s, name=n, description=d, price=p, available=10**9) for s, n, d, p, _ in PRODUCTS]
    )
    for sku, *_ in PRODUCTS:
        inventory.set_stock(sku, 10**9)
    bus = InMemoryBus(*HOPS)
    bus.deliver()
    skus = [s for s, *_ in PRODUCTS]
    for i in range(orders):
        shop.place_order(
            email=f"a{i}@example.com",
            name="Ada",
            address="1 Loop",
            lines=[{"sku": skus[i % len(skus)], "quantity": 1}, {"sku": skus[(i + 3) % len(skus)], "quantity": 2}],
        )
    for conn in connections.all():
        conn.close()
    _copy(WORK / "db", WORK / "snapshot")
    delivered: dict[str, list] = {hop: [] for hop in HOPS}
    real = dispatch.Dispatcher.handle

    def handle(self, records, *args, **kwargs):
        delivered[self.service.name].extend(records)
        return real(self, records, *args, **kwargs)

    dispatch.Dispatcher.handle = handle
    bus.deliver()
    (WORK / "records.pickle").write_bytes(pickle.dumps(delivered))
    print(json.dumps({hop: len(r) for hop, r in delivered.items()}))


def _state() -> dict:
    """What the replay left: the rows of every table of the four services, to check that variants agree."""
    from django.apps import apps
    from django.db.models import Sum

    out = {}
    for model in apps.get_models():
        alias = model._meta.app_label
        if alias in HOPS:
            out[model._meta.label] = model.objects.using(alias).count()
    from inventory.models import StockItem

    out["reserved"] = StockItem.objects.using("inventory").aggregate(n=Sum("reserved"))["n"]
    return out


def replay(variants: list[str], batch: int, reps: int) -> None:
    """Each variant `reps` times in this one process, in turn, on the databases restored before each run."""
    _django()
    import gc
    import importlib

    from django.db import connections

    from eventbus.dispatch import Dispatcher
    from eventbus.service import service
    from inventory import services as inventory

    # Stock levels are announced at most every 0.25 s: by the clock, so a faster run would announce less
    # often. Every batch announces here, as in the saga at a trickle, where batches are further apart.
    inventory.STOCK_ANNOUNCE_SECONDS = 0
    orm = orm_helpers()
    modules = [importlib.import_module(m) for m in APP_MODULES]
    real = {(m, name): getattr(m, name) for m in modules for name in HELPERS if hasattr(m, name)}
    delivered = pickle.loads((WORK / "records.pickle").read_bytes())  # noqa: S301  (written by this script)
    out: dict[str, list] = {v: [] for v in variants}
    states = {}
    warm_up = ["rows"]  # not counted: the first run of a process pays for lazy imports and caches
    for rep in range(-1, reps):
        for variant in warm_up if rep < 0 else variants[rep % len(variants) :] + variants[: rep % len(variants)]:
            for conn in connections.all():
                conn.close()
            _copy(WORK / "snapshot", Path(os.environ["REPLAY_DIR"]))
            swapped = HELPERS if variant == "orm:all" else (variant[4:],) if variant.startswith("orm:") else ()
            for (module, name), fn in real.items():
                setattr(module, name, orm[name] if name in swapped else fn)
            gc.collect()
            if variant == "freeze":
                gc.freeze()
            figures = {}
            for hop in HOPS:
                dispatcher, records = Dispatcher(service(hop)), delivered[hop]
                started = time.process_time()
                for i in range(0, len(records), batch):
                    dispatcher.handle(records[i : i + batch])
                figures[hop] = (time.process_time() - started) * 1000 / len(records)
            if rep >= 0:
                out[variant].append(figures)
                states[variant] = _state()
            if variant == "freeze":
                gc.unfreeze()
    if any(state != states[variants[0]] for state in states.values()):
        raise SystemExit(f"the variants left different rows: {json.dumps(states, indent=1)}")
    print(json.dumps(out))


# ---------------------------------------------------------------- the driver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3, help="runs of each variant per process")
    parser.add_argument("--variants", default=",".join(["rows", "freeze", *(f"orm:{h}" for h in HELPERS), "orm:all"]))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--record", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.record:
        return record(args.orders)
    if args.child:
        return replay(args.child.split(","), args.batch, args.reps)

    from tests.support import RedisServer

    if WORK.exists():
        shutil.rmtree(WORK)
    (WORK / "db").mkdir(parents=True)
    redis = RedisServer(WORK / "redis")
    redis.start()
    try:
        env = _env(WORK / "db") | {"REDIS_URL": redis.url}
        for alias in ALIASES:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--database", alias, "-v", "0"], cwd=ROOT, env=env, check=True
            )
        recorded = subprocess.run(
            [sys.executable, "-m", "bench.hop_ab", "--record", "--orders", str(args.orders)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if recorded.returncode:
            raise SystemExit(f"recording failed:\n{recorded.stderr[-3000:]}")
        print("delivered per hop:", recorded.stdout.strip().splitlines()[-1], flush=True)
        variants = args.variants.split(",")
        results: dict[str, list[dict]] = {v: [] for v in variants}
        for r in range(args.rounds):
            done = subprocess.run(
                [sys.executable, "-m", "bench.hop_ab", "--child", ",".join(variants), "--batch", str(args.batch)]
                + ["--reps", str(args.reps)],
                cwd=ROOT,
                env=_env(WORK / "replay") | {"REDIS_URL": redis.url, "REPLAY_DIR": str(WORK / "replay")},
                capture_output=True,
                text=True,
            )
            if done.returncode:
                raise SystemExit(f"round {r + 1} failed:\n{done.stderr[-3000:]}")
            for variant, runs in json.loads(done.stdout.strip().splitlines()[-1]).items():
                results[variant] += runs
            print(f"round {r + 1}/{args.rounds} done, load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        redis.stop()
    runs = len(results[variants[0]])
    print(f"\nCPU-ms per delivered event, median (min-max) of {runs} runs, batches of {args.batch}; then the")
    print("median (min-max) of each run's ratio to the `rows` run beside it in the same process:")
    print(f"{'variant':<20}" + "".join(f"{hop:>34}" for hop in HOPS))
    for variant, mine in results.items():
        cells = []
        for hop in HOPS:
            values = [x[hop] for x in mine]
            cell = f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"
            if "rows" in results and variant != "rows":
                ratios = [x[hop] / y[hop] for x, y in zip(mine, results["rows"], strict=True)]
                cell += f" {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
            cells.append(cell)
        print(f"{variant:<20}" + "".join(f"{c:>34}" for c in cells))
    (WORK / "result.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
