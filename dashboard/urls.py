from django.urls import path

from . import views
from .viewer import views as viewer

app_name = "dashboard"
urlpatterns = [
    path("", views.index, name="index"),
    path("api/state", views.state, name="state"),
    path("api/events/<int:seq>", views.event, name="event"),
    path("api/orders/<str:order_id>", views.journey, name="journey"),
    path("api/dead-letters/replay", views.replay, name="replay"),
    path("api/dead-letters/discard", views.discard, name="discard"),
    # the event viewer
    path("topics/", viewer.topics, name="topics"),
    path("api/topics/counts", viewer.topic_counts, name="topic_counts"),
    path("topics/<str:name>/", viewer.topic_messages, name="topic_messages"),
    path("topics/<str:name>/search", viewer.topic_search, name="topic_search"),
    path("topics/<str:name>/filters", viewer.save_filter, name="save_filter"),
    path("topics/<str:name>/filters/<int:pk>/delete", viewer.delete_filter, name="delete_filter"),
    path("groups/", viewer.groups, name="groups"),
    path("groups/<str:group_id>/reset", viewer.reset, name="reset"),
    path("schemas/", viewer.schema_catalogue, name="schemas"),
    path("map/", viewer.service_map, name="map"),
    path("map/chaos", viewer.chaos_switch, name="chaos"),
    path("board/replay/", viewer.board_replay, name="board_replay"),
    path("api/board-history", viewer.board_history, name="board_history"),
    path("api/map", viewer.service_map_data, name="map_data"),
]
