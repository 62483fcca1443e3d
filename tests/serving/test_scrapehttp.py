"""The scrapers' HTTP client: plain http never loads a CA bundle; https is verified, its transport built on first use."""

from __future__ import annotations

from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from resource_agent.node_agent.httpauth import EndpointAuth, EndpointOptions
from resource_agent.node_agent.server import EndpointSecurity, endpoint_security, make_metrics_server, serve_in_background
from resource_agent.scrapehttp import LoopClient, _VerifiedTlsOnFirstUse, describe_failure


def _serve(security: EndpointSecurity) -> tuple[str, ThreadingHTTPServer]:
    registry = CollectorRegistry()
    Counter("scrape_target", "a series to scrape", registry=registry).inc()
    server = make_metrics_server(registry, ("127.0.0.1", 0), security)
    serve_in_background(server)
    return f"127.0.0.1:{server.server_address[1]}", server


def test_http_scrapes_build_no_tls_and_https_is_verified_against_the_bundle(tls_files: tuple[Path, Path, Path]) -> None:
    _, cert, key = tls_files
    plain_address, plain = _serve(EndpointSecurity())
    tls_address, tls = _serve(endpoint_security(EndpointOptions(EndpointAuth.NONE, cert, key), None))
    http = LoopClient("test-scraper", timeout=2.0)
    try:
        (verifying,) = (transport for pattern, transport in http.client._mounts.items() if pattern.pattern == "https://")
        assert isinstance(verifying, _VerifiedTlsOnFirstUse)
        response = http.run(http.client.get(f"http://{plain_address}/metrics"), timeout=10)
        assert response.status_code == 200 and "scrape_target_total 1.0" in response.text
        assert verifying._transport is None  # no SSL context with ~150 CA certificates for a plain scrape
        # The test CA is in no bundle: verification fails, it is not skipped.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED") as refused:
            http.run(http.client.get(f"https://{tls_address}/metrics"), timeout=10)
        assert verifying._transport is not None
        assert describe_failure(refused.value, 2.0) == "connection failed"
    finally:
        http.close()
        for server in (plain, tls):
            server.shutdown()
            server.server_close()
    assert not http._thread.is_alive()  # closed: the client and its loop thread are gone
