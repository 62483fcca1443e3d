"""TokenReview and SubjectAccessReview against the API server: the reviewer of `node_agent.httpauth`.

The process's own ServiceAccount needs `create` on `authentication.k8s.io/tokenreviews` and
`authorization.k8s.io/subjectaccessreviews` (the chart grants it when `endpointAuth` is on;
the built-in ClusterRole `system:auth-delegator` holds the same two rules).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from resource_agent.node_agent.httpauth import ReviewError, User

REVIEW_TIMEOUT_SECONDS = 5.0


class KubernetesReviewer:
    """Asks the API server who a bearer token belongs to and whether that user may GET a URL."""

    def __init__(self, api_client: client.ApiClient, audiences: tuple[str, ...] = ()) -> None:
        self.authentication = client.AuthenticationV1Api(api_client)
        self.authorization = client.AuthorizationV1Api(api_client)
        self.audiences = list(audiences)

    def authenticate(self, token: str) -> User | None:
        body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token, audiences=self.audiences or None))
        result: Any = self._call(self.authentication.create_token_review, body, "TokenReview")
        status = result.status
        if status is None or not status.authenticated or status.user is None:
            return None
        user = status.user
        extra = {key: tuple(values or ()) for key, values in (user.extra or {}).items()}
        return User(name=user.username or "", uid=user.uid or "", groups=tuple(user.groups or ()), extra=extra)

    def authorize(self, user: User, verb: str, path: str) -> bool:
        spec = client.V1SubjectAccessReviewSpec(
            user=user.name,
            uid=user.uid or None,
            groups=list(user.groups) or None,
            extra={key: list(values) for key, values in user.extra.items()} or None,
            non_resource_attributes=client.V1NonResourceAttributes(path=path, verb=verb),
        )
        result: Any = self._call(self.authorization.create_subject_access_review, client.V1SubjectAccessReview(spec=spec), "SubjectAccessReview")
        return bool(result.status is not None and result.status.allowed)

    @staticmethod
    def _call(method: Any, body: Any, kind: str) -> Any:
        try:
            return method(body, _request_timeout=REVIEW_TIMEOUT_SECONDS)
        except ApiException as exc:
            raise ReviewError(f"{kind} failed: {exc.status} {exc.reason}") from None
        except (HTTPError, OSError) as exc:
            raise ReviewError(f"{kind} failed: {exc}") from None
