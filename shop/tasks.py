from celery import shared_task


@shared_task(name="shop.prune_idempotency_keys")
def prune_idempotency_keys() -> int:
    from .services import prune_idempotency_keys as prune

    return prune()
