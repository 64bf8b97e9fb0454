"""runtime/ leans on pieces of Django and asgiref that are not public API: each module names the versions it
was written against, and this fails as soon as the installed ones differ, so an upgrade first reads the
module against the new version (and measures it again, `bench/web_ab.py`) before the pin moves."""

from importlib.metadata import version

import pytest

import runtime.asgi
import runtime.sqlite.base


@pytest.mark.parametrize("module", [runtime.asgi, runtime.sqlite.base], ids=lambda m: m.__name__)
def test_the_installed_versions_are_the_ones_the_module_was_written_against(module):
    for package, written_against in module.WRITTEN_AGAINST.items():
        assert version(package) == written_against, (
            f"{module.__name__} was written against {package} {written_against}, and {version(package)} is "
            f"installed: read {module.__file__} against the new version (the private pieces its docstring "
            f"names), run bench/web_ab.py, then update WRITTEN_AGAINST"
        )
