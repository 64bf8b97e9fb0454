"""Runtime machinery in place of Django's stock pieces: the SQLite backend (`runtime/sqlite/`), the ASGI
handler (`runtime/asgi.py`), and the web's heap freeze at start (`runtime/heap.py`). Each stays only because
a same-run measurement against the stock piece showed it earning its place (its docstring gives the
figures, `bench/web_ab.py` measures them again), and each names the versions of the private pieces it
relies on (`tests/test_runtime_pins.py`)."""
