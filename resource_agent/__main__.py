"""`python -m resource_agent` is the `resource-agent` command."""

from resource_agent.cli import main

main()
