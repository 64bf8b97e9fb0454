from celery import shared_task


@shared_task(name="dashboard.scrub_personal_data")
def scrub_personal_data() -> int:
    """Beat runs this hourly: personal data older than PERSONAL_DATA_RETENTION_DAYS leaves the dashboard."""
    from .retention import scrub_personal_data as scrub

    return scrub()
