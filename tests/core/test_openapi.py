"""The OpenAPI document as generators read it, and a client generated from it at work."""

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import OrgClients

VERB_NOUN = re.compile(r"[a-z]+(_[a-z0-9]+)+")
VERBS = {
    "add", "cancel", "create", "delete", "export", "follow", "get", "head", "import", "list",
    "preview", "resume", "revoke", "send", "set", "stream", "unsubscribe", "update",
}  # fmt: skip
PROBLEM = {"$ref": "#/components/schemas/Problem"}
HTML_ERRORS = {
    "/a/{token}",
    "/u/{token}",
    "/m/{token}",
    "/p/{token}",
    "/r/{code}",
}  # pages answer their 404 in HTML
# A browser's form post is answered with a page, also when the form is refused or wrong.
HTML_FORM_ERRORS = {("post", "/p/{token}"): {"400", "422"}}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


@pytest.fixture
def document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


class TestOperationIds:
    def test_every_operation_id_is_a_unique_verb_noun(self, document: dict[str, Any]) -> None:
        ids = [operation["operationId"] for _m, _p, operation in operations(document)]
        assert len(ids) == len(set(ids))
        for operation_id in ids:
            assert VERB_NOUN.fullmatch(operation_id), operation_id
            assert operation_id.split("_")[0] in VERBS, operation_id
            assert "api_v1" not in operation_id

    def test_ids_name_what_operations_do(self, document: dict[str, Any]) -> None:
        by_id = {op["operationId"]: (m, p) for m, p, op in operations(document)}
        assert by_id["create_campaign"] == ("post", "/api/v1/campaigns")
        assert by_id["list_deliveries"] == ("get", "/api/v1/campaigns/{campaign_id}/deliveries")
        assert by_id["get_campaign_stats"] == ("get", "/api/v1/campaigns/{campaign_id}/stats")


class TestErrorAnswers:
    def test_every_error_answer_is_the_problem_schema(self, document: dict[str, Any]) -> None:
        for method, path, operation in operations(document):
            for code, answer in operation["responses"].items():
                if int(code) < 400 or (path in HTML_ERRORS and code == "404"):
                    continue
                if code in HTML_FORM_ERRORS.get((method, path), set()):
                    assert "text/html" in answer["content"]
                    continue
                if path == "/readyz" or path.startswith("/r/"):
                    continue  # readiness has its own 503 body; the redirect's 503 has none
                assert answer["content"] == {"application/problem+json": {"schema": PROBLEM}}, (
                    f"{method} {path} {code}"
                )

    def test_one_problem_component_and_no_validation_error_schemas(
        self, document: dict[str, Any]
    ) -> None:
        schemas = document["components"]["schemas"]
        assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "detail"}
        assert "errors" in schemas["Problem"]["properties"]
        assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas

    def test_statuses_follow_from_each_signature(self, document: dict[str, Any]) -> None:
        def codes(method: str, path: str) -> set[str]:
            return set(document["paths"][path][method]["responses"])

        send = codes("post", "/api/v1/campaigns/{campaign_id}/send")
        assert {"400", "401", "403", "404", "409", "413", "415", "422"} <= send
        # a viewer key suffices and there is no id: neither 403 nor 404 can happen
        assert codes("get", "/api/v1/amplifiers") == {"200", "401", "422"}
        assert codes("get", "/healthz") == {"200"}
        assert codes("get", "/api/v1/settings/cpc") == {"200", "401"}

    def test_key_protected_operations_declare_bearer_security(
        self, document: dict[str, Any]
    ) -> None:
        scheme = document["components"]["securitySchemes"]["apiKey"]
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
        secured = {p for _m, p, op in operations(document) if op.get("security")}
        assert "/api/v1/campaigns" in secured and "/healthz" not in secured


class TestRequestBodies:
    def test_send_body_is_optional_and_the_plain_model(self, document: dict[str, Any]) -> None:
        body = document["paths"]["/api/v1/campaigns/{campaign_id}/send"]["post"]["requestBody"]
        assert not body.get("required")
        schema = body["content"]["application/json"]["schema"]
        assert schema["$ref"] == "#/components/schemas/SendRequest"

    def test_import_rows_are_described_loosely(self, document: dict[str, Any]) -> None:
        body = document["paths"]["/api/v1/amplifiers/import"]["post"]["requestBody"]
        assert body["content"]["application/json"]["schema"]["items"] == {}
        answer = document["paths"]["/api/v1/amplifiers/import"]["post"]["responses"]["200"]
        schema = answer["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ImportResult"}


def generate_client(document: dict[str, Any], where: Path) -> Path:
    spec = where / "openapi.json"
    spec.write_text(json.dumps(document))
    package = where / "amplify_client"
    tools = Path(sys.executable).parent
    subprocess.run(
        [
            str(tools / "openapi-python-client"),
            *("generate", "--path", str(spec), "--meta", "none", "--output-path", str(package)),
        ],
        check=True,
        capture_output=True,
        env={"PATH": str(tools)},
        cwd=where,
    )
    return package


class TestGeneratedClient:
    async def test_marketer_flow_through_a_generated_client(
        self, app: FastAPI, document: dict[str, Any], org_a: OrgClients, tmp_path: Path
    ) -> None:
        package = generate_client(document, tmp_path)
        assert not list(package.glob("api/**/*_api_v1_*"))
        assert not [
            m for m in (package / "models").iterdir() if re.search(r"_response_4\d\d", m.name)
        ]
        sys.path.insert(0, str(tmp_path))
        try:
            await self._marketer_flow(app, org_a.editor.key)
        finally:
            sys.path.remove(str(tmp_path))
            for name in [m for m in sys.modules if m.startswith("amplify_client")]:
                del sys.modules[name]

    async def _marketer_flow(self, app: FastAPI, key: str) -> None:
        client_module = importlib.import_module("amplify_client")
        models = importlib.import_module("amplify_client.models")
        api = "amplify_client.api."
        create_amplifier = importlib.import_module(api + "amplifiers.create_amplifier")
        create_campaign = importlib.import_module(api + "campaigns.create_campaign")
        get_campaign = importlib.import_module(api + "campaigns.get_campaign")
        send_campaign = importlib.import_module(api + "sending.send_campaign")
        list_deliveries = importlib.import_module(api + "sending.list_deliveries")
        get_campaign_stats = importlib.import_module(api + "stats.get_campaign_stats")

        client = client_module.AuthenticatedClient(base_url="http://testserver", token=key)
        client.set_async_httpx_client(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://testserver",
                headers={"Authorization": f"Bearer {key}"},
            )
        )
        async with client:
            amplifier = await create_amplifier.asyncio(
                client=client,
                body=models.AmplifierCreate(email="ada@example.com", name="Ada", tags=["eng"]),
            )
            assert isinstance(amplifier, models.AmplifierRead)
            message = models.MessageIn(text="We launched", url="https://example.com/launch")
            campaign = await create_campaign.asyncio(
                client=client,
                body=models.CampaignCreate(
                    name="Launch",
                    subject="Share our launch",
                    networks=[models.CampaignCreateNetworksItem.LINKEDIN],
                    messages=[message],
                ),
            )
            assert isinstance(campaign, models.CampaignRead)
            sent = await send_campaign.asyncio(campaign.id, client=client)  # no body at all
            assert isinstance(sent, models.CampaignRead)
            assert sent.status == models.CampaignStatus.SENDING
            page = await list_deliveries.asyncio(campaign.id, client=client)
            assert [d.amplifier_id for d in page.items] == [amplifier.id]
            stats = await get_campaign_stats.asyncio(campaign.id, client=client)
            assert (stats.campaign_id, stats.recipients) == (campaign.id, 1)

            missing = await get_campaign.asyncio_detailed(campaign.id + 1000, client=client)
            assert missing.status_code == 404
            assert isinstance(missing.parsed, models.Problem)
            assert missing.parsed.type_ == "/problems/not-found"
            invalid = await create_amplifier.asyncio_detailed(
                client=client, body=models.AmplifierCreate(email="not an address")
            )
            assert invalid.status_code == 422
            assert isinstance(invalid.parsed, models.Problem)
            assert invalid.parsed.errors[0].loc == ["body", "email"]
