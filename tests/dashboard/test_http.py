"""The dashboard over HTTP: the page and its files with their security headers, and the chart
routes (key, tenancy, numbers, ETag/304). Expected numbers: SEED in conftest.py."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.dashboard import router as dashboard
from tests.dashboard.conftest import (
    CAMPAIGN_NAME,
    MESSAGES,
    Overview,
    Seed,
    click,
    mark_sent,
    overview_moments,
)
from tests.factories import OrgClients

pytestmark = pytest.mark.usefixtures("dashboard_app")

NS = "{http://www.w3.org/2000/svg}"
CHARTS = ["visits", "networks", "messages", "funnel"]
STATIC_DIR = Path(dashboard.__file__).parent / "static"


def chart_url(campaign_id: int, name: str) -> str:
    return f"/dashboard/charts/campaigns/{campaign_id}/{name}.svg"


def svg_of(response: httpx.Response) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(response.content)
    assert root.tag == f"{NS}svg"
    return root


def desc(root: ET.Element) -> str:
    found = root.find(f"{NS}desc")
    assert found is not None
    return found.text or ""


def title(root: ET.Element) -> str:
    found = root.find(f"{NS}title")
    assert found is not None
    return found.text or ""


def total(description: str) -> int:
    """The total a time-series chart states: `total N,` or, for one point, its value."""
    found = re.search(r"total ([\d,]+),|: ([\d,]+)\.$", description)
    assert found is not None, description
    return int((found[1] or found[2]).replace(",", ""))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if self.tags and self.tags[-1][0] == "script" and data.strip():
            self.inline_script = True


class TestPage:
    async def test_served_without_a_key_with_strict_headers(self, client) -> None:
        response = await client.get("/dashboard")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-content-type-options"] == "nosniff"
        csp = response.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["form-action"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe" not in csp
        assert "set-cookie" not in response.headers

    async def test_no_inline_script_or_style_and_only_own_files(self, client) -> None:
        parser = _Tags()
        parser.feed((await client.get("/dashboard")).text)
        assert not parser.inline_script
        scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
        assert scripts and all(a.get("src", "").startswith("/dashboard/static/") for a in scripts)
        assert not [tag for tag, _ in parser.tags if tag == "style"]
        assert not [attrs for _, attrs in parser.tags if "style" in attrs]
        assert not [a for _, attrs in parser.tags for a in attrs if a.startswith("on")]
        for tag, attrs in parser.tags:
            for name in ("src", "href"):
                value = attrs.get(name)
                if value is not None:
                    assert value.startswith(("/dashboard/static/", "#")), (tag, value)
        # the key field has no name, so a form submission could never carry it
        (key_field,) = [a for tag, a in parser.tags if tag == "input" and a.get("id") == "api-key"]
        assert "name" not in key_field and key_field["type"] == "password"

    async def test_script_never_writes_html_and_keeps_the_key_in_session_storage(self) -> None:
        script = (STATIC_DIR / "dashboard.js").read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in script, sink
        assert "new Function" not in script
        assert "localStorage" not in script and "document.cookie" not in script
        assert "sessionStorage" in script and "Authorization" in script
        assert "If-None-Match" in script

    @pytest.mark.parametrize(
        ("name", "media_type"),
        [
            ("dashboard.js", "text/javascript; charset=utf-8"),
            ("dashboard.css", "text/css; charset=utf-8"),
            ("favicon.svg", "image/svg+xml"),
        ],
    )
    async def test_static_files_with_csp_and_etag(self, client, name: str, media_type: str) -> None:
        response = await client.get(f"/dashboard/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"] == media_type
        assert response.content == (STATIC_DIR / name).read_bytes()
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"] == dashboard.PAGE_CSP
        assert response.headers["cache-control"] == "no-cache"
        again = await client.get(
            f"/dashboard/static/{name}", headers={"If-None-Match": response.headers["etag"]}
        )
        assert again.status_code == 304 and again.content == b""

    @pytest.mark.parametrize("name", ["nope.js", "..%2Frouter.py", "%2e%2e%2f__init__.py", ""])
    async def test_unknown_static_files_are_404(self, client, name: str) -> None:
        response = await client.get(f"/dashboard/static/{name}")
        assert response.status_code == 404
        assert b"import" not in response.content


class TestChartAccess:
    @pytest.mark.parametrize("name", CHARTS)
    async def test_a_key_is_needed(self, client, seed: Seed, name: str) -> None:
        url = chart_url(seed.campaign_id, name)
        assert (await client.get(url)).status_code == 401
        wrong = await client.get(url, headers={"Authorization": "Bearer amp_not_a_key"})
        assert wrong.status_code == 401
        assert wrong.headers["content-type"] == "application/problem+json"
        cookie_only = await client.get(url, headers={"Cookie": f"key={seed.org.viewer.key}"})
        assert cookie_only.status_code == 401

    @pytest.mark.parametrize("name", CHARTS)
    async def test_another_organizations_campaign_is_404(
        self, seed: Seed, org_b: OrgClients, name: str
    ) -> None:
        foreign = await org_b.viewer.get(chart_url(seed.campaign_id, name))
        assert foreign.status_code == 404
        assert CAMPAIGN_NAME not in foreign.text
        for missing in (seed.campaign_id + 1000, 0, 2**40):
            assert (await seed.org.viewer.get(chart_url(missing, name))).status_code == 404

    @pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
    async def test_every_role_may_read(self, seed: Seed, role: str) -> None:
        response = await getattr(seed.org, role).get(chart_url(seed.campaign_id, "funnel"))
        svg_of(response)


class TestChartAnswers:
    async def test_funnel(self, seed: Seed) -> None:
        root = svg_of(await seed.org.viewer.get(chart_url(seed.campaign_id, "funnel")))
        assert title(root) == f"{CAMPAIGN_NAME}: funnel"
        assert desc(root) == (
            "Sent: 3 (of 3 recipients); Sharers: 2 (67% of sent); "
            "Share clicks: 2 (1.0 per sharer); Visits: 3 (1.5 per share click)"
        )

    async def test_names_are_escaped_in_the_markup(self, seed: Seed) -> None:
        for name in CHARTS:
            response = await seed.org.viewer.get(chart_url(seed.campaign_id, name))
            assert "<script" not in response.text and "<b>" not in response.text
            assert "&lt;script&gt;" in response.text
            assert title(svg_of(response)).startswith(CAMPAIGN_NAME)

    async def test_networks(self, seed: Seed) -> None:
        root = svg_of(await seed.org.viewer.get(chart_url(seed.campaign_id, "networks")))
        assert desc(root) == "LinkedIn: 1 share clicks, 2 visits; X: 1 share clicks, 1 visits"

    async def test_messages_are_labelled_with_their_text(self, seed: Seed) -> None:
        response = await seed.org.viewer.get(chart_url(seed.campaign_id, "messages"))
        root = svg_of(response)
        assert desc(root) == (
            f"#1 {MESSAGES[0]['text']}: 2 share clicks, 3 visits; "
            f"#2 {MESSAGES[1]['text']}: 0 share clicks, 0 visits"
        )
        assert "We &lt;b&gt;launched&lt;/b&gt; &amp; it's live" in response.text

    async def test_visits_over_time_in_the_browsers_zone(self, seed: Seed) -> None:
        url = chart_url(seed.campaign_id, "visits")
        root = svg_of(await seed.org.viewer.get(url, params={"tz": "Asia/Kolkata"}))
        assert title(root) == f"{CAMPAIGN_NAME}: visits per hour (Asia/Kolkata)"
        assert total(desc(root)) == 3
        # hours from the first click to now, labelled in India's zone (UTC+05:30)
        assert re.search(r"^Visits: (one point, |\d+ points from )\d+ \w{3} \d\d:30", desc(root))
        daily = svg_of(await seed.org.viewer.get(url, params={"interval": "day"}))
        assert "visits per day (UTC)" in title(daily) and total(desc(daily)) == 3
        shares = svg_of(await seed.org.viewer.get(url, params={"metric": "share_clicks"}))
        assert "share clicks per hour" in title(shares) and total(desc(shares)) == 2

    async def test_a_young_campaign_is_one_labelled_column(self, seed: Seed) -> None:
        # Every click of the seed came this hour: one bucket, not a flat line across the width.
        root = svg_of(await seed.org.viewer.get(chart_url(seed.campaign_id, "visits")))
        assert re.fullmatch(r"Visits: one point, \d+ \w{3} \d\d:00: 3\.", desc(root))
        assert not list(root.iter(f"{NS}polyline")) and not list(root.iter(f"{NS}path"))
        (column,) = [r for r in root.iter(f"{NS}rect") if r.get("class") == "single"]
        assert float(column.get("height") or 0) > 0

    @pytest.mark.parametrize(
        "params",
        [{"tz": "Mars/Olympus"}, {"tz": "x" * 65}, {"interval": "week"}, {"metric": "emv"}],
    )
    async def test_bad_queries_are_422(self, seed: Seed, params: dict[str, str]) -> None:
        response = await seed.org.viewer.get(chart_url(seed.campaign_id, "visits"), params=params)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"

    async def test_a_draft_campaign_draws_zeros(self, org_a: OrgClients) -> None:
        created = await org_a.editor.post(
            "/api/v1/campaigns",
            json={
                "name": "Draft",
                "subject": "Draft",
                "networks": ["linkedin"],
                "messages": [{"text": "Soon", "url": "https://example.com/soon"}],
            },
        )
        campaign_id = created.json()["id"]
        for name in CHARTS:
            svg_of(await org_a.viewer.get(chart_url(campaign_id, name)))
        funnel = svg_of(await org_a.viewer.get(chart_url(campaign_id, "funnel")))
        assert desc(funnel).startswith("Sent: 0 (of 0 recipients); Sharers: 0;")


class TestChartCaching:
    @pytest.mark.parametrize("name", CHARTS)
    async def test_etag_and_304(self, seed: Seed, org_b: OrgClients, name: str) -> None:
        url = chart_url(seed.campaign_id, name)
        first = await seed.org.viewer.get(url)
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "private, no-cache"
        assert first.headers["x-content-type-options"] == "nosniff"
        assert first.headers["content-security-policy"].startswith("default-src 'none'")
        again = await seed.org.viewer.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        # another organization's key learns nothing from a tag: 404 before any comparison
        assert (await org_b.viewer.get(url, headers={"If-None-Match": etag})).status_code == 404

    async def test_a_new_visit_changes_the_tag_and_the_numbers(
        self, client, app, seed: Seed
    ) -> None:
        url = chart_url(seed.campaign_id, "funnel")
        before = await seed.org.viewer.get(url)
        await click(client, seed.codes[("bob", 0, "x", "visit")], seed.next_agent())
        await app.state.tracking.recorder.flush()
        after = await seed.org.viewer.get(url, headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200
        assert after.headers["etag"] != before.headers["etag"]
        assert desc(svg_of(after)).endswith("Visits: 4 (2.0 per share click)")


ENGAGEMENT_CHART = "/dashboard/charts/engagement.svg"


def month(moment: datetime, zone: str) -> str:
    return f"{moment.astimezone(ZoneInfo(zone)):%b %Y}"


def tooltips(root: ET.Element) -> list[str]:
    return [
        found.text or ""
        for circle in root.iter(f"{NS}circle")
        if (found := circle.find(f"{NS}title")) is not None
    ]


class TestEngagementChart:
    @pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
    async def test_months_from_the_first_reached_in_the_browsers_zone(
        self, overview: Overview, zone: str
    ) -> None:
        response = await overview.org.viewer.get(ENGAGEMENT_CHART, params={"tz": zone})
        root = svg_of(response)
        assert title(root) == f"Engagement index per month ({zone})"
        last_month, this_month = month(overview.earlier, zone), month(overview.recent, zone)
        # The ten empty months before last month are left out: the line starts there.
        assert desc(root).startswith(f"Engagement index: 2 points from {last_month} to ") or (
            desc(root).startswith(f"Engagement index: 3 points from {last_month} to ")
        ), desc(root)  # 3: late on a month's last day UTC, Berlin is a month ahead already
        assert f"highest 50% at {last_month}" in desc(root)
        shown = tooltips(root)
        assert shown[:2] == [
            f"{last_month}: 50% engagement index",
            f"{this_month}: 16.7% engagement index",
        ]
        assert {"0%", "50%", "100%"} <= {t.text for t in root.iter(f"{NS}text")}

    async def test_nothing_sent_yet(self, org_b: OrgClients) -> None:
        root = svg_of(await org_b.viewer.get(ENGAGEMENT_CHART))
        assert desc(root) == "No data yet."

    async def test_one_month_is_one_column(self, seed: Seed, sessionmaker) -> None:
        # The seed: 3 reached and 2 sharers, all this month (the digests moved into it).
        await mark_sent(sessionmaker, seed.campaign_id, overview_moments(datetime.now(UTC))[1])
        root = svg_of(await seed.org.viewer.get(ENGAGEMENT_CHART, params={"tz": "UTC"}))
        assert desc(root).startswith("Engagement index: one point, ")
        assert desc(root).endswith(": 66.7%.")
        assert not list(root.iter(f"{NS}polyline"))

    async def test_key_tenancy_etag_and_bad_zone(
        self, client, overview: Overview, org_b: OrgClients
    ) -> None:
        assert (await client.get(ENGAGEMENT_CHART)).status_code == 401
        first = await overview.org.viewer.get(ENGAGEMENT_CHART)
        again = await overview.org.viewer.get(
            ENGAGEMENT_CHART, headers={"If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304
        # another organization gets its own (empty) answer, never this one's
        foreign = await org_b.viewer.get(
            ENGAGEMENT_CHART, headers={"If-None-Match": first.headers["etag"]}
        )
        assert foreign.status_code == 200 and desc(svg_of(foreign)) == "No data yet."
        bad = await overview.org.viewer.get(ENGAGEMENT_CHART, params={"tz": "Mars/Olympus"})
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
