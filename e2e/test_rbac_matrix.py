"""The RBAC matrix: every ServiceAccount of the chart, what it can and cannot do, asked of the real API server.

The matrix is generated from the chart as rendered by the built helm (default values, and with
the optional features on): for each ServiceAccount, every (group, resource, verb, name) its bound
rules grant must be allowed, every other verb on those resources must be denied, and a fixed list
of dangerous rights (secrets, exec, RBAC escalation, tokens, workloads, CRD changes, the other
component's objects) must be denied. The server answers SubjectAccessReviews for the
ServiceAccount's user (`system:serviceaccount:NS:NAME`, with its groups), so the default cluster
roles every ServiceAccount holds are part of the answer, as they are in a real cluster.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from e2e.providers import ClusterHandle
from e2e.test_admission import _crd_files, wait_established
from tests.chart.chart_render import documents, template

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
RBAC_KINDS = ("ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
VALUES = {
    "default": None,
    "llm-and-monitoring": {"operator.llm.provider": "groq", "operator.llm.existingSecret": "llm-key", "agent.hostPID": True},
}


@dataclass(frozen=True)
class Access:
    group: str
    resource: str  # may be "resource/subresource"
    verb: str
    name: str = ""
    namespace: str = ""  # "" = cluster-wide (a ClusterRoleBinding) or any namespace

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        named = f"/{self.name}" if self.name else ""
        return f"{self.verb} {self.group or 'core'}/{self.resource}{named}{where}"


# what no ServiceAccount of the chart may ever do (namespace "" = cluster-wide)
FORBIDDEN = [
    Access("", "secrets", verb) for verb in ("get", "list", "watch", "create", "update", "delete")
] + [
    Access("", "pods/exec", "create"),
    Access("", "pods/attach", "create"),
    Access("", "pods/portforward", "create"),
    Access("", "pods", "create"),
    Access("", "pods", "delete"),
    Access("", "pods/eviction", "create"),
    Access("", "nodes", "update"),
    Access("", "nodes", "delete"),
    Access("", "nodes/proxy", "get"),
    Access("", "serviceaccounts/token", "create"),
    Access("", "serviceaccounts", "create"),
    Access("", "configmaps", "update"),
    Access("", "namespaces", "delete"),
    Access("apps", "deployments", "update"),
    Access("apps", "daemonsets", "patch"),
    Access("rbac.authorization.k8s.io", "clusterroles", "escalate"),
    Access("rbac.authorization.k8s.io", "clusterroles", "bind"),
    Access("rbac.authorization.k8s.io", "clusterrolebindings", "create"),
    Access("rbac.authorization.k8s.io", "roles", "create"),
    Access("apiextensions.k8s.io", "customresourcedefinitions", "create"),
    Access("apiextensions.k8s.io", "customresourcedefinitions", "update"),
    Access("apiextensions.k8s.io", "customresourcedefinitions", "delete"),
    Access("admissionregistration.k8s.io", "validatingadmissionpolicies", "delete"),
    Access("admissionregistration.k8s.io", "validatingadmissionpolicybindings", "delete"),
    Access("certificates.k8s.io", "certificatesigningrequests/approval", "update"),
    Access("", "users", "impersonate"),
    Access("", "serviceaccounts", "impersonate"),
]
# per component, beyond FORBIDDEN: the other side's objects
FORBIDDEN_FOR = {
    "agent": [
        Access("resource.optiinfra.io", "resourcerecommendations", verb) for verb in ("get", "list", "create", "patch", "delete")
    ] + [
        Access("resource.optiinfra.io", "resourcereports", "delete"),
        Access("resource.optiinfra.io", "resourcereports", "list"),
        Access("resource.optiinfra.io", "workloadusagecheckpoints", "get"),
        Access("", "pods", "get"),
        Access("", "nodes", "list"),
        Access("", "nodes", "patch"),
    ],
    # The operator may patch Nodes (operator.labelGpuCapacityNodes): RBAC cannot narrow a patch to one
    # label, so the chart's ValidatingAdmissionPolicy <release>-operator-node-label refuses every other
    # change; e2e/test_gpu_capacity_label.py checks that refusal against the real API server.
    "operator": [
        Access("resource.optiinfra.io", "resourcereports", "create"),
        Access("resource.optiinfra.io", "resourcereports", "delete"),
        Access("resource.optiinfra.io", "resourcereports/status", "patch"),
        Access("apiextensions.k8s.io", "customresourcedefinitions", "get", name="clusterroles.rbac.authorization.k8s.io"),
        Access("kopf.dev", "clusterkopfpeerings", "delete"),
    ],
}


def granted(docs: list[dict[str, Any]], account: str, namespace: str) -> set[Access]:
    """Every access the chart's bindings give `account` (expanded per verb, resource and name)."""
    roles = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs if d["kind"] in ("Role", "ClusterRole")}
    accesses: set[Access] = set()
    for binding in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if not any(s["kind"] == "ServiceAccount" and s["name"] == account and s.get("namespace", namespace) == namespace for s in binding.get("subjects") or []):
            continue
        bound_ns = binding["metadata"].get("namespace", namespace) if binding["kind"] == "RoleBinding" else ""
        ref = binding["roleRef"]
        role = roles[(ref["kind"], bound_ns if ref["kind"] == "Role" else "", ref["name"])]
        for rule in role.get("rules") or []:
            for group in rule.get("apiGroups", []):
                for resource in rule.get("resources", []):
                    for verb in rule["verbs"]:
                        for name in rule.get("resourceNames") or [""]:
                            accesses.add(Access(group, resource, verb, name, bound_ns))
    return accesses


def matrix(docs: list[dict[str, Any]], namespace: str) -> dict[str, tuple[set[Access], set[Access]]]:
    """ServiceAccount -> (must be allowed, must be denied)."""
    result = {}
    for account in (d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"):
        allowed = granted(docs, account, namespace)
        component = next((c for c in FORBIDDEN_FOR if account.endswith(f"-{c}")), "")
        denied = set(FORBIDDEN) | set(FORBIDDEN_FOR.get(component, []))
        # every verb the rules do not give on each resource they name (unnamed: any name)
        for resource in {(a.group, a.resource, a.namespace) for a in allowed if not a.name}:
            given = {a.verb for a in allowed if (a.group, a.resource, a.namespace) == resource and not a.name}
            denied |= {Access(resource[0], resource[1], verb, "", resource[2]) for verb in VERBS if verb not in given and "*" not in given}
        for named in (a for a in allowed if a.name):
            if not any(a.name == "" and (a.group, a.resource, a.verb) == (named.group, named.resource, named.verb) for a in allowed):
                denied.add(Access(named.group, named.resource, named.verb, "some-other-name", named.namespace))
        overlap = {a for a in denied if _covered(a, allowed)}
        assert not overlap, f"{account}: the chart grants what the matrix forbids: {sorted(map(str, overlap))}"
        result[account] = (allowed, denied)
    return result


def _covered(access: Access, allowed: set[Access]) -> bool:
    return any(
        (a.group, a.resource, a.verb) == (access.group, access.resource, access.verb) and a.name in ("", access.name) and a.namespace in ("", access.namespace)
        for a in allowed
    )


def _review(authz: Any, user: str, groups: list[str], access: Access) -> bool:
    from kubernetes.client import V1ResourceAttributes, V1SubjectAccessReview, V1SubjectAccessReviewSpec

    resource, _, subresource = access.resource.partition("/")
    attributes = V1ResourceAttributes(
        group=access.group, resource=resource, subresource=subresource or None, verb=access.verb, name=access.name or None, namespace=access.namespace or None
    )
    review = V1SubjectAccessReview(spec=V1SubjectAccessReviewSpec(user=user, groups=groups, resource_attributes=attributes))
    return bool(authz.create_subject_access_review(review).status.allowed)


@pytest.fixture(scope="module", params=sorted(VALUES))
def rendered(request: pytest.FixtureRequest, cluster: ClusterHandle) -> Iterator[tuple[list[dict[str, Any]], str]]:
    for path in _crd_files():  # kubectl auth can-i resolves resources through discovery
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    wait_established(cluster, "resourcereports.resource.optiinfra.io")
    namespace = f"rbac-{uuid.uuid4().hex[:6]}"
    release = f"rb{namespace[-6:]}"
    manifest = template(cluster.helm_path, VALUES[request.param], release=release, namespace=namespace)
    docs = [d for d in documents(manifest) if d["kind"] in RBAC_KINDS]
    cluster.kubectl("create", "namespace", namespace)
    text = "\n---\n".join(json.dumps(d) for d in docs)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=text)
    yield docs, namespace
    cluster.kubectl("delete", "-n", namespace, "-f", "-", "--ignore-not-found", "--wait=false", input=text, check=False)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_every_service_account_can_do_exactly_what_the_chart_grants(cluster: ClusterHandle, rendered: tuple[list[dict[str, Any]], str]) -> None:
    from kubernetes.client import AuthorizationV1Api

    docs, namespace = rendered
    table = matrix(docs, namespace)
    assert {name.rsplit("-", 1)[-1] for name in table} >= {"agent", "operator"}, sorted(table)
    wrong: list[str] = []
    checked = 0
    with cluster.api_client() as api:
        authz = AuthorizationV1Api(api)
        for account, (allowed, denied) in sorted(table.items()):
            user = f"system:serviceaccount:{namespace}:{account}"
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]
            for access in sorted(allowed, key=str):
                checked += 1
                if not _review(authz, user, groups, access):
                    wrong.append(f"{account} cannot {access} (the chart grants it)")
            for access in sorted(denied, key=str):
                checked += 1
                if _review(authz, user, groups, access):
                    wrong.append(f"{account} CAN {access} (must be denied)")
    assert not wrong, "\n".join(wrong)
    assert checked > 100


def test_kubectl_auth_can_i_agrees_on_a_sample(cluster: ClusterHandle, rendered: tuple[list[dict[str, Any]], str]) -> None:
    """The same answers through `kubectl auth can-i --as=system:serviceaccount:NS:NAME` (impersonation)."""
    docs, namespace = rendered
    for account, (allowed, _denied) in sorted(matrix(docs, namespace).items()):
        as_user = f"--as=system:serviceaccount:{namespace}:{account}"
        for access, expected in [(min(allowed, key=str), "yes"), (Access("", "secrets", "get"), "no"), (Access("", "pods/exec", "create"), "no")]:
            resource = f"{access.resource.partition('/')[0]}.{access.group}" if access.group else access.resource.partition("/")[0]
            args = ["auth", "can-i", access.verb, f"{resource}/{access.name}" if access.name else resource, as_user]
            if "/" in access.resource:
                args.append(f"--subresource={access.resource.partition('/')[2]}")
            args += ["-n", access.namespace] if access.namespace else ["--all-namespaces"]
            result = cluster.kubectl(*args, check=False)
            assert result.stdout.strip() == expected, f"{account}: {' '.join(args)} -> {result.stdout.strip()} {result.stderr.strip()}"
