"""docs/prometheus.yml scrapes what compose publishes: the display's /metrics on the mirror's port."""

import re
from pathlib import Path

import yaml

from display.app import create_app
from display.settings import DisplaySettings

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_scrapes_the_display_on_the_port_compose_publishes():
    config = yaml.safe_load((ROOT / "docs/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    (static,) = job["static_configs"]
    (target,) = static["targets"]
    published = re.search(r'"\$\{MIRROR_PORT:-(\d+)\}:(\d+)"', (ROOT / "compose.yaml").read_text())
    assert published, "compose.yaml publishes the mirror's port as ${MIRROR_PORT:-N}:M"
    assert target.endswith(":" + published.group(1))
    assert int(published.group(2)) == DisplaySettings().port
    path = job.get("metrics_path", "/metrics")
    routes = create_app(DisplaySettings(), panel=None, chronicle=None).routes
    assert path in {getattr(route, "path", None) for route in routes}
    assert "docs/prometheus.yml" in (ROOT / "README.md").read_text()
