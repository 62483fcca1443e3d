"""Who may read /metrics and /report: the decision, the review cache, and the server with TLS (no cluster)."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from resource_agent.node_agent.httpauth import CachedReviewer, EndpointAuth, EndpointOptions, ReviewError, User, bearer_token, decide
from resource_agent.node_agent.server import EndpointSecurity, endpoint_security, make_metrics_server, serve_in_background
from resource_agent.node_agent.settings import AgentConfig
from resource_agent.operator.settings import OperatorConfig


@dataclass
class FakeReviewer:
    """Tokens -> users, and (user, verb, path) grants; counts the reviews it answers."""

    tokens: dict[str, User] = field(default_factory=dict)
    grants: set[tuple[str, str, str]] = field(default_factory=set)
    broken: bool = False
    calls: list[str] = field(default_factory=list)

    def authenticate(self, token: str) -> User | None:
        self.calls.append("token")
        if self.broken:
            raise ReviewError("connection refused")
        return self.tokens.get(token)

    def authorize(self, user: User, verb: str, path: str) -> bool:
        self.calls.append("access")
        if self.broken:
            raise ReviewError("connection refused")
        return (user.name, verb, path) in self.grants


READER = User("system:serviceaccount:monitoring:prometheus", uid="u1", groups=("system:serviceaccounts",))
STRANGER = User("system:serviceaccount:default:default", uid="u2")


def reviewer() -> FakeReviewer:
    return FakeReviewer(tokens={"good": READER, "other": STRANGER}, grants={(READER.name, "get", "/metrics")})


@pytest.mark.parametrize(
    ("header", "token"),
    [(None, None), ("", None), ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic dXNlcg==", None), ("Bearer", None), ("Bearer ", None)],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("path", "header", "status"),
    [
        ("/metrics", "Bearer good", 200),  # a valid token whose user RBAC allows `get /metrics`
        ("/report", "Bearer good", 403),  # ... but not `get /report`
        ("/metrics", "Bearer other", 403),  # a valid token without the grant
        ("/metrics", "Bearer forged", 401),  # a token the API server does not know
        ("/metrics", None, 401),  # no token
        ("/metrics", "Basic dXNlcjpwdw==", 401),  # not a bearer token
        ("/healthz", None, 200),  # the kubelet's probes need no token
        ("/readyz", None, 200),
    ],
)
def test_decision(path: str, header: str | None, status: int) -> None:
    decision = decide(path, header, reviewer())
    assert decision.status == status, decision.reason
    assert decision.allowed == (status == 200)


def test_forbidden_names_the_user_and_the_rbac_rule_needed() -> None:
    decision = decide("/report", "Bearer good", reviewer())
    assert decision.user == READER.name
    assert READER.name in decision.reason and "nonResourceURLs ['/report']" in decision.reason


def test_no_reviewer_serves_everyone() -> None:
    assert decide("/metrics", None, None).allowed


def test_a_review_that_cannot_be_made_is_503_not_a_refusal() -> None:
    broken = FakeReviewer(broken=True)
    decision = decide("/metrics", "Bearer good", broken)
    assert decision.status == 503 and "connection refused" in decision.reason


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_reuses_answers_until_they_expire() -> None:
    inner, clock = reviewer(), Clock()
    cached = CachedReviewer(inner, ttl=60.0, clock=clock)
    for _ in range(5):
        assert decide("/metrics", "Bearer good", cached).allowed
    assert inner.calls == ["token", "access"]  # one TokenReview and one SubjectAccessReview for five scrapes
    clock.now += 61
    assert decide("/metrics", "Bearer good", cached).allowed
    assert inner.calls == ["token", "access"] * 2


def test_cache_keeps_refusals_briefly() -> None:
    inner, clock = reviewer(), Clock()
    cached = CachedReviewer(inner, ttl=60.0, negative_ttl=10.0, clock=clock)
    assert decide("/metrics", "Bearer forged", cached).status == 401
    assert decide("/metrics", "Bearer forged", cached).status == 401
    assert inner.calls == ["token"]
    clock.now += 11  # a token just made (or a binding just created) counts within 10 s
    inner.tokens["forged"] = READER
    assert decide("/metrics", "Bearer forged", cached).allowed


def test_cache_does_not_keep_failed_reviews() -> None:
    inner = reviewer()
    cached = CachedReviewer(inner, clock=Clock())
    inner.broken = True
    assert decide("/metrics", "Bearer good", cached).status == 503
    inner.broken = False
    assert decide("/metrics", "Bearer good", cached).allowed


def test_cache_is_bounded() -> None:
    inner = FakeReviewer(tokens={str(n): READER for n in range(10)})
    cached = CachedReviewer(inner, clock=Clock(), max_entries=3)
    for n in range(10):
        cached.authenticate(str(n))
    inner.calls.clear()
    cached.authenticate("9")
    cached.authenticate("0")
    assert inner.calls == ["token"]  # 9 still cached, 0 evicted


def test_settings_are_layered_and_tls_needs_both_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("endpointAuth: kubernetes\nendpointAuthCacheTtl: 2m\n")
    monkeypatch.setenv("RESOURCE_AGENT_TLS_CERT_FILE", "/tls/tls.crt")
    monkeypatch.setenv("RESOURCE_AGENT_TLS_KEY_FILE", "/tls/tls.key")
    options = AgentConfig.load(config).endpoint_options()
    assert options == EndpointOptions(EndpointAuth.KUBERNETES, Path("/tls/tls.crt"), Path("/tls/tls.key"), 120.0)
    assert options.tls
    monkeypatch.delenv("RESOURCE_AGENT_TLS_KEY_FILE")
    with pytest.raises(ValueError, match="set both or neither"):
        AgentConfig.load(config)
    with pytest.raises(ValueError, match="set both or neither"):
        OperatorConfig.load(None)
    monkeypatch.delenv("RESOURCE_AGENT_TLS_CERT_FILE")
    assert OperatorConfig.load(None, endpoint_auth="kubernetes").runtime().metrics_security.auth == EndpointAuth.KUBERNETES
    assert OperatorConfig.load(None).runtime().metrics_security == EndpointOptions()


@pytest.fixture
def operator_metrics(tls_files: tuple[Path, Path, Path]) -> Iterator[str]:
    """The operator's /metrics server over TLS with the fake reviewer; yields its https URL."""
    _, cert, key = tls_files
    registry = CollectorRegistry()
    Counter("resource_agent_operator_test", "a series to scrape", registry=registry).inc()
    security = endpoint_security(EndpointOptions(EndpointAuth.KUBERNETES, cert, key), reviewer())
    server = make_metrics_server(registry, ("127.0.0.1", 0), security)
    serve_in_background(server)
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str, token: str | None, context: ssl.SSLContext | None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_server_over_tls_with_auth(operator_metrics: str, tls_files: tuple[Path, Path, Path]) -> None:
    ca, _, _ = tls_files
    trusted = ssl.create_default_context(cafile=str(ca))
    status, body = _get(f"{operator_metrics}/metrics", "good", trusted)
    assert status == 200 and "resource_agent_operator_test_total 1.0" in body
    assert _get(f"{operator_metrics}/metrics", "other", trusted)[0] == 403
    assert _get(f"{operator_metrics}/metrics", None, trusted)[0] == 401
    assert _get(f"{operator_metrics}/nothing", "good", trusted)[0] == 403  # authorised per path, before routing
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(f"{operator_metrics}/metrics", "good", ssl.create_default_context())  # not the system's CAs
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        _get(operator_metrics.replace("https", "http") + "/metrics", "good", None)  # no plain HTTP on a TLS port


def test_plain_server_without_security_is_unchanged() -> None:
    registry = CollectorRegistry()
    server = make_metrics_server(registry, ("127.0.0.1", 0), EndpointSecurity())
    serve_in_background(server)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert _get(f"{base}/metrics", None, None)[0] == 200
        status, body = _get(f"{base}/other", None, None)
        assert status == 404 and "/metrics" in body
    finally:
        server.shutdown()
        server.server_close()
