"""The config's part in reports: `branding` (checked, read by the report) and agent ids
that would collide with the daemon's own actors, which the reports credit to nobody."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnidesk.configload import parse_config
from omnidesk.errors import ConfigError

MINIMAL = (Path(__file__).parent / "fixtures" / "config" / "minimal.yaml").read_text("utf-8")


def test_branding_loads_with_both_names():
    text = MINIMAL + "branding: {name_ar: وزارة التجارة, name_en: Ministry of Commerce}\n"
    branding = parse_config(text, Path("cfg.yaml")).data.branding
    assert branding is not None and branding.name_ar == "وزارة التجارة"
    assert branding.colour == "#006c35" and branding.logo is None


@pytest.mark.parametrize(
    "extra",
    [
        "branding: {name_ar: وزارة, name_en: Ministry, colour: green}\n",
        "branding: {name_en: Ministry}\n",
        "agents:\n  - {id: csat, queues: [riyadh]}\n",
        "agents:\n  - {id: sla, queues: [riyadh]}\n",
    ],
)
def test_bad_branding_and_agents_named_like_system_actors_are_refused(extra):
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL + extra, Path("cfg.yaml"))
    assert info.value.problems
