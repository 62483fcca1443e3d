"""Settings for every long-running command, one mechanism: defaults < YAML file < RESOURCE_AGENT_* environment < command line."""
