"""The API group, version, resource names, labels and field managers: what the agent needs of the API
without building the custom resources' models (`api.resources`)."""

GROUP = "resource.optiinfra.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "optiinfra"
REPORT_PLURAL = "resourcereports"
RECOMMENDATION_PLURAL = "resourcerecommendations"
NODE_LABEL = f"{GROUP}/node"
RULE_LABEL = f"{GROUP}/rule"
AGENT_FIELD_MANAGER = "resource-agent"
OPERATOR_FIELD_MANAGER = "resource-agent-operator"
