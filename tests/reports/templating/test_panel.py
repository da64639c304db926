"""The reading room's templates panel, over HTTP: which templates a radiologist is offered for
an item (best fit first, only their hospital's and their groups'), the controls it has, and 404
for an item that is not theirs."""

from __future__ import annotations

import re
from typing import Any

from tests.reports.templating.conftest import client_for


def _panel(user: Any, item: Any) -> Any:
    return client_for(user).get(f"/reports/templates/items/{item.pk}/panel/")


def _offered(html: str) -> list[str]:
    return re.findall(r"Use template <strong>([^<]+)</strong>", html)


def test_a_ct_chest_study_offers_the_exact_fit_first_then_ct_then_generic(reading, library):
    item = reading.item(modality="CT", body_part="CHEST")
    response = _panel(reading.bob, item)
    assert response.status_code == 200
    assert _offered(response.content.decode()) == ["CT chest", "CT any", "Readers CT", "Generic"]


def test_an_mr_head_study_offers_the_mr_head_template_and_the_generic_one(reading, library):
    item = reading.item(modality="MR", body_part="HEAD", description="MR BRAIN")
    assert _offered(_panel(reading.bob, item).content.decode()) == ["MR head", "Generic"]


def test_another_groups_and_another_hospitals_templates_are_not_offered(reading, library):
    item = reading.item(reading.people.second, modality="CT", body_part="CHEST")
    # erin reads for second-hospital through night-readers only
    assert _offered(_panel(reading.erin, item).content.decode()) == ["Night CT", "Second CT"]
    # bob reads for it through demo-readers
    assert _offered(_panel(reading.bob, item).content.decode()) == ["Readers CT", "Second CT"]


def test_the_panel_has_a_form_with_the_fields_and_pick_lists(reading, library):
    item = reading.item(modality="CT", body_part="CHEST")
    html = _panel(reading.bob, item).content.decode()
    pk = library.ct_chest.pk
    assert f'<form class="tpl-form" id="tpl-form-{pk}"' in html
    assert re.search(rf'<label for="tpl-{pk}-nodule_size">Nodule size</label>', html)
    assert re.search(rf'id="tpl-{pk}-nodule_size"[^>]*type="number"', html)
    assert re.search(r'<option value="with" selected>with</option>', html)
    assert re.search(r'<option value="">\(choose\)</option>\s*<option value="left">left', html)
    assert re.search(rf'id="tpl-{pk}-lungs"[^>]*type="text" value="Clear\."', html)
    assert "Insert into report" in html
    assert "reports/templating.js" in html


def test_another_hospitals_admin_gets_404_for_the_panel(reading, library):
    item = reading.item(modality="CT", body_part="CHEST")
    assert _panel(reading.people.charlie, item).status_code == 404
    assert client_for(reading.bob).get("/reports/templates/items/999999/panel/").status_code == 404


def test_the_panel_needs_a_login(reading, library):
    item = reading.item(modality="CT", body_part="CHEST")
    from django.test import Client

    response = Client().get(f"/reports/templates/items/{item.pk}/panel/")
    assert response.status_code == 302 and "/login/" in response["Location"]
