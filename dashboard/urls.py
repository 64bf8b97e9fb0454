from django.urls import path

from . import views

app_name = "dashboard"
urlpatterns = [
    path("", views.index, name="index"),
    path("api/state", views.state, name="state"),
    path("api/events/<int:seq>", views.event, name="event"),
    path("api/orders/<str:order_id>", views.journey, name="journey"),
    path("api/dead-letters/replay", views.replay, name="replay"),
    path("api/dead-letters/discard", views.discard, name="discard"),
]
