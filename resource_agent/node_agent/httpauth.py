"""Who may read /metrics and /report: the decision (pure), and a cache in front of the reviews.

With `endpoint_auth: kubernetes` the agent and the operator do what kube-rbac-proxy does:
the request's bearer token goes to the API server in a TokenReview (who is this?), then the
user it names goes into a SubjectAccessReview for the non-resource URL and verb
(`get /metrics`), so access is granted with ordinary RBAC:

    rules:
      - nonResourceURLs: ["/metrics", "/report"]
        verbs: ["get"]

Health endpoints (/healthz, /readyz) stay open for the kubelet's probes. Reviews are cached
for a short time (positive answers for `cache_ttl`, negative ones for at most 10 s) so a
scrape every 15 s costs no API request; a failed review (API server unreachable) is never
cached and answers 503. The reviewer itself (the API calls) lives in `kube.review`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Generic, Protocol, TypeVar

K = TypeVar("K")
V = TypeVar("V")

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
NEGATIVE_TTL_SECONDS = 10.0
CACHE_ENTRIES = 1024


class EndpointAuth(StrEnum):
    NONE = "none"  # anyone who reaches the port (restrict it with the NetworkPolicy)
    KUBERNETES = "kubernetes"  # bearer token -> TokenReview -> SubjectAccessReview (kube-rbac-proxy)


@dataclass(frozen=True)
class EndpointOptions:
    """What the settings say about an HTTP endpoint's security (shared by agent and operator)."""

    auth: EndpointAuth = EndpointAuth.NONE
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    cache_ttl_seconds: float = 60.0

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None


def check_tls_files(cert: Path | None, key: Path | None) -> None:
    """Both or neither: a certificate without its key (or the reverse) is a settings error."""
    if (cert is None) != (key is None):
        raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")


@dataclass(frozen=True)
class User:
    """An authenticated user as a TokenReview names it."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class ReviewError(RuntimeError):
    """The review could not be made (API server unreachable, refused, or no permission to review)."""


class Reviewer(Protocol):
    def authenticate(self, token: str) -> User | None:
        """The user the token belongs to, None when the token is not valid; ReviewError when unknown."""
        ...

    def authorize(self, user: User, verb: str, path: str) -> bool:
        """Whether `user` may `verb` the non-resource URL `path`; ReviewError when unknown."""
        ...


@dataclass(frozen=True)
class Decision:
    status: int  # 200 (serve), 401, 403 or 503
    reason: str
    user: str | None = None

    @property
    def allowed(self) -> bool:
        return self.status == 200


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, None for anything else."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def decide(
    path: str, authorization: str | None, reviewer: Reviewer | None, verb: str = "get", open_paths: frozenset[str] = OPEN_PATHS
) -> Decision:
    """Whether to serve `verb path` to the holder of the `Authorization` header."""
    if reviewer is None:
        return Decision(200, "authentication off")
    if path in open_paths:
        return Decision(200, "open path")
    token = bearer_token(authorization)
    if token is None:
        return Decision(401, "a bearer token is required (Authorization: Bearer <token>)")
    try:
        user = reviewer.authenticate(token)
    except ReviewError as exc:
        return Decision(503, f"cannot review the token: {exc}")
    if user is None:
        return Decision(401, "the token is not valid")
    try:
        allowed = reviewer.authorize(user, verb, path)
    except ReviewError as exc:
        return Decision(503, f"cannot review access: {exc}", user.name)
    if not allowed:
        return Decision(403, f"user {user.name!r} may not {verb} {path} (needs RBAC: nonResourceURLs [{path!r}], verbs [{verb!r}])", user.name)
    return Decision(200, "allowed", user.name)


class _TTLCache(Generic[K, V]):
    """A small thread-safe cache whose entries expire (LRU beyond `max_entries`)."""

    def __init__(self, clock: Callable[[], float], max_entries: int) -> None:
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> tuple[bool, V | None]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            expires, value = entry
            if self._clock() >= expires:
                del self._entries[key]
                return False, None
            self._entries.move_to_end(key)
            return True, value

    def put(self, key: K, value: V, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


class CachedReviewer:
    """Caches another reviewer's answers: `ttl` for valid tokens and grants, at most 10 s for refusals."""

    def __init__(
        self,
        inner: Reviewer,
        ttl: float = 60.0,
        negative_ttl: float = NEGATIVE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = CACHE_ENTRIES,
    ) -> None:
        self.inner = inner
        self.ttl = ttl
        self.negative_ttl = min(negative_ttl, ttl)
        self._tokens: _TTLCache[str, User | None] = _TTLCache(clock, max_entries)
        self._grants: _TTLCache[tuple[str, str, tuple[str, ...], str, str], bool] = _TTLCache(clock, max_entries)

    def authenticate(self, token: str) -> User | None:
        key = hashlib.sha256(token.encode()).hexdigest()  # the cache keeps no token
        hit, user = self._tokens.get(key)
        if hit:
            return user
        user = self.inner.authenticate(token)
        self._tokens.put(key, user, self.ttl if user is not None else self.negative_ttl)
        return user

    def authorize(self, user: User, verb: str, path: str) -> bool:
        key = (user.name, user.uid, user.groups, verb, path)
        hit, allowed = self._grants.get(key)
        if hit:
            return bool(allowed)
        allowed = self.inner.authorize(user, verb, path)
        self._grants.put(key, allowed, self.ttl if allowed else self.negative_ttl)
        return allowed
