"""Where people find share links: a "Share" link next to each study on the home page and in the
reading room, leading to the new-link page with the study filled in, and the hospital's list."""

from __future__ import annotations

import html
import re
from typing import Any

from tests.studies.test_sharing import staff
from tests.worklists.conftest import make_item, reading  # noqa: F401 - the fixture


def share_links(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="(/s/t/[^"]+)"', page)]


def test_the_home_page_and_the_reading_room_link_to_sharing_the_study(reading: Any) -> None:  # noqa: F811
    item = make_item(reading.people.demo)
    uid = item.study.study_instance_uid
    alice, bob = staff(reading.people.alice), staff(reading.people.bob)
    home = alice.get("/")
    assert f"/s/t/demo-hospital/new/?study={uid}" in share_links(home.text)
    assert "/s/t/demo-hospital/" in share_links(home.text)  # the hospital's share links
    room = bob.get(f"/worklist/items/{item.pk}/")
    assert room.status_code == 200
    [target] = [h for h in share_links(room.text) if "/new/" in h]
    form = bob.get(target)
    assert form.status_code == 200 and uid in form.text
