"""Operability endpoints: liveness, readiness (Kafka, Redis, every database) and Prometheus metrics."""

from django.urls import path

from . import ops

urlpatterns = [
    path("healthz", ops.healthz),
    path("readyz", ops.readyz),
    path("metrics", ops.metrics),
]
