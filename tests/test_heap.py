"""runtime.heap: what the web loaded before serving is out of the garbage collector's sight."""

import gc

from runtime.heap import freeze_startup_objects


def test_objects_made_before_serving_are_no_longer_walked_by_collections():
    loaded_at_start = [{"a model": "or a module's object"}]
    try:
        freeze_startup_objects()
        walked = gc.get_objects()
        assert not any(obj is loaded_at_start for obj in walked)
        made_while_serving = [{"a request's": "objects"}]
        assert any(obj is made_while_serving for obj in gc.get_objects())
    finally:
        gc.unfreeze()
