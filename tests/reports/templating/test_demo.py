"""The demo's templates: seeding twice changes nothing, and bob is offered them in the panel."""

from __future__ import annotations

import re

from tests.reports.templating.conftest import client_for


def test_seeding_the_demo_templates_twice_makes_them_once(reading):
    from reports.templating.demo import seed_templates
    from reports.templating.models import ReportTemplate, TextBlock

    people = reading.people
    tenants = {"demo-hospital": people.demo, "second-hospital": people.second}
    seed_templates(tenants, people.group)
    counts = (ReportTemplate.objects.count(), TextBlock.objects.count())
    seed_templates(tenants, people.group)
    assert (ReportTemplate.objects.count(), TextBlock.objects.count()) == counts == (4, 4)

    head_ct = reading.item(modality="CT", body_part="HEAD", description="CT HEAD")
    html = client_for(reading.bob).get(f"/reports/templates/items/{head_ct.pk}/panel/")
    offered = re.findall(r"Use template <strong>([^<]+)</strong>", html.content.decode())
    assert offered == ["CT head (non-contrast), teleradiology", "General radiology report"]
    assert ".nochest" in html.content.decode() and ".crit" in html.content.decode()
