"""docs/deploy.md names one web entry point, the one that keeps tokens out of the logs."""

import re

from tests.support import ROOT

DOC = (ROOT / "docs" / "deploy.md").read_text()


def test_the_web_process_is_config_serve():
    rows = [line for line in DOC.splitlines() if line.startswith("| web |")]
    assert len(rows) == 1, rows
    assert "`python -m config.serve " in rows[0] and "config.asgi:application" in rows[0]
    assert not re.search(r"`daphne ", DOC), "a bare daphne command would log tokens"


def test_every_setting_the_doc_exports_is_read_by_the_settings():
    settings_py = (ROOT / "config" / "settings.py").read_text()
    exported = set(re.findall(r"^export (\w+)=", DOC, re.MULTILINE))
    assert {"TRUSTED_PROXIES", "CONVEYOR_METRICS_TOKEN", "CONVEYOR_PRIVATE_NETWORKS"} <= exported
    per_app = {f"{app.upper()}_DATABASE_URL" for app in ("shop", "inventory", "shipping", "dashboard")}
    missing = sorted(name for name in exported - per_app if f'"{name}"' not in settings_py)
    assert not missing, f"docs/deploy.md exports settings nobody reads: {missing}"
