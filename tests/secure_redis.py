"""A real redis-server that demands a password, or speaks only TLS (a throw-away CA made with openssl)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import redis

from tests.support import free_port, wait_for


def make_tls_files(directory: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost, signed by it (openssl CLI)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {name: directory / f"{name}.pem" for name in ("ca", "ca-key", "cert", "key")}
    csr, ext = directory / "server.csr", directory / "san.ext"
    # Python 3.13 verifies with VERIFY_X509_STRICT: the CA needs critical basicConstraints and keyUsage, the
    # server certificate an authority key identifier; a real CA's certificates have them too.
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n"
    )
    steps = [
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=conveyor test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout", files["ca-key"], "-out", files["ca"]],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", files["key"], "-out", csr],
        ["openssl", "x509", "-req", "-in", csr, "-CA", files["ca"], "-CAkey", files["ca-key"], "-CAcreateserial",
         "-days", "2", "-extfile", ext, "-out", files["cert"]],
    ]  # fmt: skip
    for step in steps:
        subprocess.run([str(a) for a in step], check=True, capture_output=True)
    return files


class SecureRedis:
    """redis-server on loopback with `password` and, when `tls`, TLS only (no plain port)."""

    def __init__(self, workdir: Path, *, password: str = "", tls: bool = False):
        self.workdir, self.password, self.tls = workdir, password, tls
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.files: dict[str, Path] = {}

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if not self.tls:
            return f"redis://{auth}127.0.0.1:{self.port}/0"
        return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_cert_reqs=required&ssl_ca_certs={self.files['ca']}"

    def start(self) -> SecureRedis:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        args += ["no", "--dir", str(self.workdir)]
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            self.files = make_tls_files(self.workdir / "tls")
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            args += ["--tls-cert-file", str(self.files["cert"]), "--tls-key-file", str(self.files["key"])]
            args += ["--tls-ca-cert-file", str(self.files["ca"])]
        else:
            args += ["--port", str(self.port)]
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.ping, 20, f"redis-server on {self.port} (log: {self.workdir / 'redis.log'})")
        return self

    def ping(self) -> bool:
        assert self.process.poll() is None, (self.workdir / "redis.log").read_text()
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            return client.ping()
        finally:
            client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
