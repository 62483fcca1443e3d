"""URL specs, pod annotations, redaction and config facts (pure)."""

from __future__ import annotations

import pytest

from resource_agent.lmcache.config import REDACTED, config_facts, kv_bytes_per_token, redact_conf
from resource_agent.lmcache.discovery import DiscoveryError, instances_from_pods, merge, parse_url_spec


def test_url_specs_name_every_port():
    assert parse_url_spec("http://10.0.0.5:6999,7000,7001").urls == (
        "http://10.0.0.5:6999", "http://10.0.0.5:7000", "http://10.0.0.5:7001")
    assert parse_url_spec("10.0.0.5:6999+2").urls == parse_url_spec("http://10.0.0.5:6999,7000,7001").urls
    assert parse_url_spec("[fd00::1]:6999").urls == ("http://[fd00::1]:6999",)


@pytest.mark.parametrize("spec", ["host", "host:0", "host:70000", "host:6999,6999", "ftp://h:1", "u:p@h:1", "h:1+9999"])
def test_bad_specs_raise(spec):
    with pytest.raises(DiscoveryError):
        parse_url_spec(spec)


def test_annotated_running_pods_become_instances_with_the_lmcache_port_layout():
    pods = [
        {"metadata": {"name": "a", "namespace": "ns", "annotations": {"resource.optiinfra.io/lmcache-port": "6999",
                                                                       "resource.optiinfra.io/lmcache-workers": "2"}},
         "status": {"phase": "Running", "podIP": "10.1.2.3"}},
        {"metadata": {"name": "pending", "namespace": "ns", "annotations": {"resource.optiinfra.io/lmcache-port": "6999"}},
         "status": {"phase": "Pending"}},
        {"metadata": {"name": "bad", "namespace": "ns", "annotations": {"resource.optiinfra.io/lmcache-port": "x"}},
         "status": {"phase": "Running", "podIP": "10.1.2.4"}},
    ]
    found, errors = instances_from_pods(pods)
    assert [(i.id, i.urls) for i in found] == [("ns/a", ("http://10.1.2.3:6999", "http://10.1.2.3:7000", "http://10.1.2.3:7001"))]
    assert len(errors) == 1 and "ns/bad" in errors[0]
    merged = merge([parse_url_spec("10.1.2.3:6999"), parse_url_spec("10.9.9.9:6999")], found)
    assert [i.id for i in merged] == ["ns/a", "http://10.9.9.9:6999"]


def test_redaction_of_conf():
    conf = {
        "remote_url": "redis://default:hunter2@redis:6379/0?password=hunter3",
        "extra_config": {"aws_secret_access_key": "AKIA1", "endpoint": "x", "histogram_bucket_time_to_retrieve": [0.1]},
        "auth_token": "tok", "min_retrieve_tokens": 256, "max_local_cpu_size": 5.0, "apiKey": "k",
    }
    safe = redact_conf(conf)
    text = repr(safe)
    for secret in ("hunter2", "hunter3", "AKIA1", "tok'", "'k'"):
        assert secret not in text
    assert safe["remote_url"] == f"redis://{REDACTED}@redis:6379/0?{REDACTED}"
    assert safe["extra_config"] == {"aws_secret_access_key": REDACTED, "endpoint": REDACTED,
                                    "histogram_bucket_time_to_retrieve": [0.1]}
    assert safe["min_retrieve_tokens"] == 256 and safe["max_local_cpu_size"] == 5.0
    assert redact_conf({"extra_config": '{"k": "v"}'})["extra_config"] == REDACTED


def test_config_facts_keep_only_sizes_flag_and_scheme():
    facts = config_facts({"max_local_cpu_size": 2.5, "max_local_disk_size": "0", "local_cpu": "true",
                          "remote_url": "S3://bucket:secret@x"})
    assert facts.max_local_cpu_size_bytes == 2.5 * 2**30 and facts.max_local_disk_size_bytes == 0
    assert facts.local_cpu_enabled is True and facts.remote_backend == "s3"


def test_kv_bytes_per_token_uses_cache_dtype_unless_auto():
    info = {"model_config": {"dtype": "torch.bfloat16", "num_layers": 80, "num_kv_heads": 8, "head_size": 128},
            "cache_config": {"cache_dtype": "auto"}}
    assert kv_bytes_per_token(info) == 80 * 8 * 128 * 2 * 2
    assert kv_bytes_per_token({**info, "cache_config": {"cache_dtype": "fp8_e4m3"}}) == 80 * 8 * 128 * 2
    assert kv_bytes_per_token({"model_config": {"dtype": "torch.bfloat16", "num_layers": None}}) is None
