"""The dashboard reads every topic into its own read model."""

from eventbus.envelope import Envelope

from .models import EventLog


def record_event(event: Envelope) -> None:
    EventLog.objects.using("dashboard").get_or_create(
        topic=event.topic,
        partition=event.partition,
        offset=event.offset,
        defaults=dict(
            event_id=event.id,
            event_type=event.type,
            source=event.source,
            subject=event.subject,
            correlation_id=event.correlation_id or "",
            causation_id=event.causation_id or "",
            time=event.time,
            headers=event.headers,
            payload="",
        ),
    )


HANDLERS = {"*": [record_event]}
