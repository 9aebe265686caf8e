"""The API reference at /docs in Chromium (issue 24): served with a Content-Security-Policy as
strict as the console's, under which Swagger UI still renders and nothing is refused."""

from __future__ import annotations

import pytest

from gateway.web.console import CSP as CONSOLE_CSP
from tests.ui.conftest import Tab

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_docs_render_under_a_strict_content_security_policy(tab: Tab) -> None:
    response = await tab.page.goto(f"{tab.base}/docs")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert policy.replace(" data:", "") == CONSOLE_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    await tab.page.wait_for_selector(".swagger-ui .info .title")
    assert "AI Gateway" in (await tab.page.inner_text(".swagger-ui .info .title"))
    # The fixture asserts at teardown: no CSP violation, no page error, nothing from outside.
