"""End to end in headless Chromium (Debian's `chromium` driven by Playwright) against the app
served over real HTTP: sign-in, the seeded numbers, live updates after a click, sign-out, the
amplifier pages, the organization overview and a young campaign's chart. Screenshots go to the
`artifacts` directory (printed at the end)."""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.core.public_links import DIGEST, IMPACT, page_token, unsubscribe_token
from tests.dashboard.conftest import CAMPAIGN_NAME, MESSAGES, ROSTER, Overview, Seed, Tab
from tests.factories import OrgClients

pytestmark = pytest.mark.usefixtures("dashboard_app")

KEY_STORAGE = "amplify.dashboard.key"


async def expect_text(tab: Tab, selector: str, text: str, timeout: float = 10_000) -> None:
    from playwright.async_api import expect

    await expect(tab.page.locator(selector)).to_have_text(text, timeout=timeout)


async def sign_in(tab: Tab, key: str, query: str = "?refresh=1") -> None:
    await tab.page.goto(f"/dashboard{query}")
    await tab.page.fill("#api-key", key)
    await tab.page.click("#sign-in-button")


async def stored_key(tab: Tab) -> str | None:
    value: str | None = await tab.page.evaluate(f"() => sessionStorage.getItem({KEY_STORAGE!r})")
    return value


def kpi(name: str) -> str:
    return f'[data-kpi="{name}"] .value'


class TestSignIn:
    async def test_a_wrong_key_shows_a_clear_error(self, tab: Tab, artifacts: Path) -> None:
        await sign_in(tab, "amp_this-is-not-a-key")
        error = tab.page.locator("#sign-in-error")
        await error.wait_for(state="visible")
        assert "not accepted" in (await error.text_content() or "")
        assert await tab.page.locator("#view-sign-in").is_visible()
        assert await tab.page.locator("#view-campaigns").is_hidden()
        assert await stored_key(tab) is None
        await tab.page.screenshot(path=artifacts / "01-wrong-key.png")
        assert tab.problems == []

    async def test_sign_out_forgets_the_key(
        self, tab: Tab, seed: Seed, org_b: OrgClients, artifacts: Path
    ) -> None:
        key = seed.org.viewer.key
        await sign_in(tab, key)
        await tab.page.locator("#campaign-rows tr").first.wait_for()
        assert await stored_key(tab) == key
        # a reload keeps the tab signed in (sessionStorage), without any cookie
        await tab.page.reload()
        await tab.page.locator("#campaign-rows tr").first.wait_for()
        assert await tab.page.evaluate("() => document.cookie") == ""
        cookies = await tab.page.context.cookies()
        assert cookies == []
        # another organization's campaign is not found, like in the API
        foreign = await org_b.editor.post(
            "/api/v1/campaigns",
            json={
                "name": "Org B secret",
                "subject": "B",
                "networks": ["x"],
                "messages": [{"text": "B", "url": "https://example.com/b"}],
            },
        )
        await tab.page.goto(f"/dashboard?refresh=1#/campaigns/{foreign.json()['id']}")
        await expect_text(
            tab,
            "#campaign-error",
            "This campaign does not exist, or it belongs to another organization.",
        )
        assert "Org B secret" not in await tab.page.content()
        await tab.page.click("#sign-out")
        await tab.page.locator("#view-sign-in").wait_for(state="visible")
        assert await stored_key(tab) is None
        assert await tab.page.locator("#view-campaign").is_hidden()
        await tab.page.reload()
        await tab.page.locator("#view-sign-in").wait_for(state="visible")
        await tab.page.screenshot(path=artifacts / "05-signed-out.png")
        # the key never went into a URL: no request the page made carries it
        assert all(key not in response.url for response in tab.responses)
        assert tab.problems == []


class TestCampaignDashboard:
    async def test_seeded_numbers_charts_and_a_live_update(
        self, tab: Tab, seed: Seed, artifacts: Path
    ) -> None:
        page = tab.page
        key = seed.org.viewer.key
        await sign_in(tab, key)

        # the list: the name with HTML special characters is text, nothing of it ran
        link = page.locator("#campaign-rows tr a")
        await expect_text(tab, "#campaign-rows tr a", CAMPAIGN_NAME)
        assert await page.locator("#campaign-rows script, #campaign-rows b").count() == 0
        assert await page.evaluate("() => window.__pwned") is None
        assert key not in page.url
        await page.screenshot(path=artifacts / "02-campaigns.png", full_page=True)

        # one campaign: the numbers of the seed
        await link.click()
        await expect_text(tab, kpi("visits"), "3")
        await expect_text(tab, "#campaign-name", CAMPAIGN_NAME)
        for name, value in [
            ("sent", "3"),
            ("sharers", "2"),
            ("share_clicks", "2"),
            ("potential_reach", "500"),
            ("emv", "$11.54"),
            ("conversions", "0"),
        ]:
            await expect_text(tab, kpi(name), value)
        await expect_text(tab, '[data-kpi="sharers"] .sub', "66.7% share rate")
        await expect_text(tab, '[data-kpi="visits"] .sub', "3 unique visitors")
        for chart in ("funnel", "visits", "networks", "messages"):
            await page.locator(f"#chart-{chart} > svg").wait_for()
        funnel = await page.locator("#chart-funnel > svg > desc").text_content()
        assert funnel is not None and "Visits: 3" in funnel
        zone = await page.locator("#chart-visits > svg > title").text_content()
        assert zone is not None and zone.endswith("(Europe/Berlin)")
        networks = page.locator("#network-rows tr")
        await expect_text(tab, '#network-rows [data-network="linkedin"] th', "LinkedIn")
        assert await networks.count() == 2
        messages = await page.locator("#message-rows th").all_text_contents()
        assert messages == [f"#1 {MESSAGES[0]['text']}", f"#2 {MESSAGES[1]['text']}"]
        await page.locator("#amplifier-rows tr").nth(2).wait_for()
        names = await page.locator("#amplifier-rows .who-name").all_text_contents()
        assert sorted(names) == sorted(row["name"] for row in ROSTER)
        assert await page.locator("#amplifier-rows img, #message-rows b").count() == 0
        assert await page.evaluate("() => window.__pwned") is None
        # M1's wordings side by side, the better share rate marked
        base, other = '[data-variant="0"]', '[data-variant="1"]'
        await expect_text(tab, f"{base} .variant-text", MESSAGES[0]["text"])
        await expect_text(tab, f"{other} .variant-text", "Another <i>wording</i>")
        figures = page.locator(f"{base} .variant-figure dd")
        assert await figures.all_text_contents() == ["2", "1", "50%", "1", "2", "2", "2"]
        figures = page.locator(f"{other} .variant-figure dd")
        assert await figures.all_text_contents() == ["1", "1", "100%", "1", "1", "1", "1"]
        assert await page.locator(".variant.best").get_attribute("data-variant") == "1"
        assert await page.locator("#variant-messages section").count() == 1  # M2 has none
        assert await page.locator("#variant-messages i").count() == 0
        await page.screenshot(path=artifacts / "03-campaign.png", full_page=True)

        # a new visit through the real server's redirect, and a sale reported against the
        # click id it brought to the landing page, show up by polling
        async with httpx.AsyncClient(base_url=tab.base_url) as http:
            response = await http.get(
                f"/r/{seed.codes[('bob', 0, 'x', 'visit')]}",
                headers={"user-agent": seed.next_agent()},
            )
            assert response.status_code == 302
            click_id = parse_qs(urlsplit(response.headers["location"]).query)["amp_cid"][0]
            sale = await http.post(
                "/api/v1/conversions",
                json={"click_id": click_id, "event": "purchase", "value": 25},
                headers=seed.org.editor.headers,
            )
            assert sale.status_code == 201, sale.text
        await expect_text(tab, kpi("visits"), "4", timeout=8_000)
        await expect_text(tab, kpi("conversions"), "1", timeout=8_000)
        await expect_text(tab, '[data-kpi="conversions"] .sub', "$25.00 value")
        bob = f'#amplifier-rows [data-amplifier-id="{seed.amplifier["bob"]}"]'
        await expect_text(tab, f"{bob} td:nth-of-type(7)", "1", timeout=8_000)
        await expect_text(tab, f"{bob} td:nth-of-type(8)", "$25.00")
        await expect_text(tab, '[data-kpi="visits"] .sub', "4 unique visitors")
        await expect_text(tab, "#network-rows [data-network='x'] td:nth-of-type(3)", "2")
        from playwright.async_api import expect

        await expect(page.locator("#chart-funnel > svg > desc")).to_contain_text("Visits: 4")
        await page.screenshot(path=artifacts / "04-campaign-updated.png", full_page=True)

        # polling is conditional: unchanged stats come back as bodiless 304s
        stats_url = f"/api/v1/campaigns/{seed.campaign_id}/stats"
        async with page.expect_response(
            lambda r: r.url.endswith(stats_url) and r.status == 304, timeout=5_000
        ):
            pass
        stats = [r for r in tab.responses if r.url.endswith(stats_url)]
        assert {r.status for r in stats} == {200, 304}
        for response in stats:
            headers = await response.request.all_headers()
            assert headers["authorization"] == f"Bearer {key}"
        assert all(key not in r.url for r in tab.responses)

        await page.set_viewport_size({"width": 390, "height": 844})
        await page.screenshot(path=artifacts / "04-campaign-phone.png", full_page=True)
        assert tab.problems == []


class TestAmplifierPages:
    async def test_web_digest_and_unsubscribe(
        self, tab: Tab, seed: Seed, app, artifacts: Path
    ) -> None:
        page = tab.page
        signer = app.state.signer
        response = await page.goto(f"/a/{page_token(signer, DIGEST, seed.delivery['ada'])}")
        assert response is not None and response.status == 200
        body = page.locator("body")
        await body.locator("text=Read the story").wait_for()
        assert MESSAGES[0]["text"] in (await body.text_content() or "")
        assert await page.locator("a[href*='/r/']").count() >= 4  # 2 messages × 2 networks
        await page.screenshot(path=artifacts / "06-web-digest.png", full_page=True)

        response = await page.goto(f"/u/{unsubscribe_token(signer, seed.amplifier['bob'])}")
        assert response is not None and response.status == 200
        await page.locator("h1", has_text="Unsubscribe").wait_for()
        await page.screenshot(path=artifacts / "07-unsubscribe.png", full_page=True)
        amplifier = f"/api/v1/amplifiers/{seed.amplifier['bob']}"
        assert (await seed.org.viewer.get(amplifier)).json()["status"] == "active"  # GET is safe
        await page.click("button[type=submit]")
        await expect_text(tab, "h1", "You are unsubscribed")
        await page.screenshot(path=artifacts / "08-unsubscribed.png", full_page=True)
        assert (await seed.org.viewer.get(amplifier)).json()["status"] == "unsubscribed"

        response = await page.goto("/u/not-a-token")
        assert response is not None and response.status == 404
        assert tab.problems == []

    async def test_preference_page_round_trip(
        self, tab: Tab, seed: Seed, app, artifacts: Path
    ) -> None:
        page = tab.page
        cy = seed.amplifier["cy"]
        signer = app.state.signer
        await page.goto(f"/u/{unsubscribe_token(signer, cy)}")
        # Fewer mails is offered before unsubscribing; links carry AMPLIFY_PUBLIC_URL.
        href = await page.get_attribute("a:has-text('Choose how often')", "href")
        assert href is not None and urlsplit(href).path.startswith("/p/")
        await page.goto(urlsplit(href).path)
        await page.locator("h1", has_text="Mail preferences").wait_for()
        assert await page.is_checked("input[name=frequency][value=each]")
        await page.check("input[name=frequency][value=daily]")
        await page.check("input[name=pause][value='2w']")
        await page.check("input[name=networks][value=bluesky]")
        await page.select_option("select[name=locale]", "de")
        await page.screenshot(path=artifacts / "10-preferences.png", full_page=True)
        await page.click("button[type=submit]")
        await expect_text(tab, "h1", "Mail-Einstellungen")
        await page.locator("[role=status]", has_text="Gespeichert").wait_for()
        assert await page.is_checked("input[name=frequency][value=daily]")
        assert await page.is_checked("input[name=networks][value=bluesky]")
        assert "Pausiert bis" in (await page.locator("body").text_content() or "")
        await page.screenshot(path=artifacts / "11-preferences-saved.png", full_page=True)
        saved = (await seed.org.viewer.get(f"/api/v1/amplifiers/{cy}")).json()
        assert (saved["frequency"], saved["locale"], saved["networks"]) == (
            "daily",
            "de",
            ["linkedin", "bluesky"],
        )
        assert saved["paused_until"] is not None

        token = page.url.rsplit("/", 1)[-1]
        response = await page.goto(f"/p/{token[:-2]}xx")
        assert response is not None and response.status == 404
        assert tab.problems == []


class TestTwoCampaigns:
    async def test_list_shows_every_campaign_and_opens_the_right_one(
        self, tab: Tab, seed: Seed
    ) -> None:
        created = await seed.org.editor.post(
            "/api/v1/campaigns",
            json={
                "name": "Second & last",
                "subject": "Two",
                "networks": ["linkedin"],
                "messages": [{"text": "Two", "url": "https://example.com/two"}],
            },
        )
        assert created.status_code == 201
        await sign_in(tab, seed.org.viewer.key)
        await expect_text(tab, "#campaign-rows tr:nth-child(2) a", "Second & last")
        await tab.page.click("text=Second & last")
        await expect_text(tab, kpi("sent"), "0")
        await expect_text(tab, "#campaign-status", "draft")
        await tab.page.locator("#amplifiers-empty").wait_for(state="visible")
        await tab.page.click("text=← All campaigns")
        await expect_text(tab, "#campaign-rows tr:nth-child(1) a", CAMPAIGN_NAME)
        assert tab.problems == []

    async def test_my_impact_page_in_german(
        self, tab: Tab, seed: Seed, app, artifacts: Path
    ) -> None:
        page = tab.page
        ada = seed.amplifier["ada"]
        changed = await seed.org.editor.patch(f"/api/v1/amplifiers/{ada}", json={"locale": "de"})
        assert changed.status_code == 200, changed.text
        public = await seed.org.admin.put(
            "/api/v1/settings/sending", json={"public_leaderboard": True}
        )
        assert public.status_code == 200
        token = page_token(app.state.signer, IMPACT, ada)
        response = await page.goto(f"/m/{token}")
        assert response is not None and response.status == 200
        assert response.headers["content-language"] == "de"
        assert await page.get_attribute("html", "lang") == "de"
        await expect_text(tab, "h1", "Deine Wirkung")
        # Ada: one (message, network) shared = 10 points, two visitors brought = 2; first of 3.
        month = page.locator(".score").first
        await expect_text(tab, ".score >> nth=0 >> [data-figure=points]", "12")
        assert await month.locator("[data-figure=rank]").text_content() == "Platz 1 von 3"
        assert await month.locator("[data-figure=visits]").text_content() == "2"
        chart = page.locator(".chart svg")
        assert await chart.is_visible()
        assert (await chart.bounding_box() or {}).get("width", 0) > 200
        top = page.locator("tr.me")
        assert "(du)" in (await top.text_content() or "")
        await page.screenshot(path=artifacts / "09-my-impact.png", full_page=True)

        response = await page.goto(f"/m/{token[:-2]}xx")
        assert response is not None and response.status == 404
        assert tab.problems == []


BERLIN = ZoneInfo("Europe/Berlin")  # the tab's time zone


async def row_texts(tab: Tab, selector: str) -> list[str]:
    texts: list[str] = await tab.page.locator(f"{selector} > *").all_text_contents()
    return texts


class TestOverview:
    async def test_engagement_by_month_teams_and_campaigns_side_by_side(
        self, tab: Tab, overview: Overview, artifacts: Path
    ) -> None:
        page = tab.page
        await sign_in(tab, overview.org.viewer.key)
        await page.locator("#campaign-rows tr").first.wait_for()
        await page.click("#nav >> text=Overview")
        await page.locator("#view-overview").wait_for(state="visible")
        assert page.url.endswith("#/overview")
        assert await page.get_attribute('[data-nav="overview"]', "aria-current") == "page"
        assert await page.get_attribute('[data-nav="campaigns"]', "aria-current") is None

        # the engagement index by month, in the browser's zone, from last month on
        last_month = f"{overview.earlier.astimezone(BERLIN):%b %Y}"
        this_month = f"{overview.recent.astimezone(BERLIN):%b %Y}"
        chart = page.locator("#chart-engagement > svg")
        await chart.wait_for()
        assert await chart.locator("title").first.text_content() == (
            "Engagement index per month (Europe/Berlin)"
        )
        description = await chart.locator("desc").text_content() or ""
        assert description.startswith("Engagement index: ") and f"from {last_month}" in description
        assert f"highest 50% at {last_month}" in description
        assert (await chart.bounding_box() or {}).get("width", 0) > 300

        # the months, newest first, hand-computed in conftest.py (OVERVIEW)
        earlier = f"#month-rows [data-month='{overview.earlier.astimezone(BERLIN):%Y-%m}']"
        recent = f"#month-rows [data-month='{overview.recent.astimezone(BERLIN):%Y-%m}']"
        await page.locator(earlier).wait_for()
        assert await row_texts(tab, earlier) == [last_month, "6", "6", "3", "50%", "4"]
        assert await row_texts(tab, recent) == [this_month, "6", "6", "1", "16.7%", "2"]
        months = await page.locator("#month-rows tr").evaluate_all(
            "rows => rows.map(r => r.dataset.month)"
        )
        assert months == sorted(months, reverse=True) and months[-1] == earlier.split("'")[1]

        # teams: one row per tag, alphabetical
        await page.locator("#team-rows tr").nth(2).wait_for()
        teams = await page.locator("#team-rows tr").evaluate_all(
            "rows => rows.map(r => [...r.children].map(c => c.textContent))"
        )
        assert teams == [
            ["eng", "2", "2", "1", "50%", "1", "1", "$5.58"],
            ["marketing", "2", "2", "1", "50%", "1", "2", "$11.16"],
            ["sales", "2", "2", "2", "100%", "2", "3", "$16.74"],
        ]
        assert await page.locator("#teams-table th[scope=col]").count() == 8

        # campaigns side by side, latest first (none of them has reported conversions)
        await page.locator("#compare-rows tr").nth(2).wait_for()
        compared = await page.locator("#compare-rows tr").evaluate_all(
            "rows => rows.map(r => [r.children[0].textContent,"
            " ...[...r.children].slice(2).map(c => c.textContent)])"
        )
        assert compared == [
            ["Quiet note", "6", "0%", "—", "$0.00", "0", "$0.00"],
            ["Winter webinar", "6", "16.7%", "2 (best)", "$11.16", "0", "$0.00"],
            ["Autumn launch", "6", "50% (best)", "1.3", "$22.32 (best)", "0", "$0.00"],
        ]
        best = page.locator("#compare-rows td.best")
        assert await best.count() == 3
        await page.screenshot(path=artifacts / "10-overview.png", full_page=True)

        # a row opens its campaign
        await page.click("#compare-rows >> text=Autumn launch")
        await expect_text(tab, "#campaign-name", "Autumn launch")
        assert await page.get_attribute('[data-nav="campaigns"]', "aria-current") == "page"
        await page.go_back()
        await page.locator("#compare-rows tr").nth(2).wait_for()

        await page.set_viewport_size({"width": 390, "height": 844})
        await page.screenshot(path=artifacts / "11-overview-phone.png", full_page=True)
        assert tab.problems == []

    async def test_an_organization_without_digests(self, tab: Tab, org_b: OrgClients) -> None:
        await sign_in(tab, org_b.viewer.key, "?refresh=1#/overview")
        await tab.page.locator("#months-empty").wait_for(state="visible")
        await tab.page.locator("#teams-empty").wait_for(state="visible")
        await tab.page.locator("#compare-empty").wait_for(state="visible")
        desc = await tab.page.locator("#chart-engagement > svg > desc").text_content()
        assert desc == "No data yet."
        assert tab.problems == []


class TestYoungCampaign:
    async def test_one_hour_of_data_is_one_labelled_column(
        self, tab: Tab, seed: Seed, artifacts: Path
    ) -> None:
        # The seed's clicks all came this hour: the chart has a single bucket.
        await sign_in(tab, seed.org.viewer.key, f"?refresh=1#/campaigns/{seed.campaign_id}")
        chart = tab.page.locator("#chart-visits > svg")
        await chart.wait_for()
        description = await chart.locator("desc").text_content() or ""
        assert description.startswith("Visits: one point, ") and description.endswith(": 3.")
        assert await chart.locator("polyline").count() == 0
        column = chart.locator("rect.single")
        box = await column.bounding_box()
        whole = await chart.bounding_box()
        assert box is not None and whole is not None
        assert box["width"] < whole["width"] / 4 and box["height"] > 20
        middle = box["x"] + box["width"] / 2
        assert abs(middle - (whole["x"] + whole["width"] / 2)) < whole["width"] / 10
        await tab.page.locator("#chart-visits").screenshot(
            path=artifacts / "12-young-campaign-chart.png"
        )
        assert tab.problems == []
