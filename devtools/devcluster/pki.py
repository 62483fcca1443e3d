"""A throwaway PKI for the local control plane, made with the ``openssl`` CLI.

ECDSA P-256 keys throughout: one CA signs the serving certificates (etcd,
kube-apiserver) and the client certificates (users are the certificate's CN,
groups its O entries), and a separate key pair signs ServiceAccount tokens.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

DAYS = 365


class PKIError(RuntimeError):
    """openssl is missing or refused a request."""


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key on disk."""

    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise PKIError("the 'openssl' command is needed to make the local control plane's certificates")
    result = subprocess.run([openssl, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise PKIError(f"openssl {args[0]} failed: {result.stdout.strip()}")


def _subject(common_name: str, organizations: tuple[str, ...]) -> str:
    return "".join(f"/O={org}" for org in organizations) + f"/CN={common_name}"


def new_key(path: Path) -> Path:
    """Write a new P-256 private key (PKCS#8 PEM) to ``path``."""
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    path.chmod(0o600)
    return path


def public_key(private_key: Path, path: Path) -> Path:
    """Write the public half of ``private_key`` to ``path``."""
    _openssl("pkey", "-in", str(private_key), "-pubout", "-out", str(path))
    return path


def make_ca(directory: Path, common_name: str = "resource-agent-dev-ca") -> KeyPair:
    """A self-signed CA in ``directory`` (ca.crt, ca.key)."""
    key = new_key(directory / "ca.key")
    cert = directory / "ca.crt"
    _openssl(
        "req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", str(DAYS),
        "-subj", f"/CN={common_name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )  # fmt: skip
    return KeyPair(cert, key)


def issue(
    ca: KeyPair,
    directory: Path,
    name: str,
    common_name: str,
    *,
    organizations: tuple[str, ...] = (),
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
) -> KeyPair:
    """Issue ``<name>.crt``/``<name>.key`` signed by ``ca`` for serving and/or client auth."""
    key = new_key(directory / f"{name}.key")
    cert = directory / f"{name}.crt"
    usages = [usage for usage, wanted in (("serverAuth", server), ("clientAuth", client)) if wanted]
    if not usages:
        raise ValueError("a certificate needs server=True, client=True or both")
    extensions = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={','.join(usages)}",
    ]
    alt_names = [f"DNS:{dns}" for dns in dns_names] + [f"IP:{ip}" for ip in ip_addresses]
    if alt_names:
        extensions.append(f"subjectAltName={','.join(alt_names)}")
    with tempfile.NamedTemporaryFile("w", suffix=".csr", dir=directory) as csr:
        _openssl("req", "-new", "-key", str(key), "-subj", _subject(common_name, organizations), "-out", csr.name)
        with tempfile.NamedTemporaryFile("w", suffix=".ext", dir=directory) as ext:
            ext.write("\n".join(extensions) + "\n")
            ext.flush()
            _openssl(
                "x509", "-req", "-in", csr.name, "-CA", str(ca.cert), "-CAkey", str(ca.key),
                "-CAcreateserial", "-days", str(DAYS), "-extfile", ext.name, "-out", str(cert),
            )  # fmt: skip
    return KeyPair(cert, key)
