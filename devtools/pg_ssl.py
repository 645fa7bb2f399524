"""SSL for the throwaway PostgreSQL: an opt-in of devtools.pg_server.Server (`Server(root, ssl=True)`).

`enable` makes, with the openssl command line, a certificate authority, a server certificate for
127.0.0.1 signed by it and a client certificate for CERT_USER whose key is encrypted with a
passphrase. The server's files live in the data directory, owned by the server's OS user and
readable by it alone; the client's (the CA certificate, the client certificate, its key and the
passphrase, all 0600) live in `<root>/ssl` for the tests' sslrootcert, sslcert, sslkey and
sslpassword. pg_hba.conf lets CERT_USER in only over SSL, with a certificate the CA signed for it
(clientcert=verify-full) and its password; every other role connects as before (with or without
SSL). log_connections is on: the server log says whether each connection used SSL.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

CERT_USER = "kit_cert"
EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]


def ssl_dir(root: Path) -> Path:
    return root / "ssl"


def client_options(root: Path, sslmode: str = "verify-ca") -> dict[str, str]:
    """Django OPTIONS for CERT_USER: SSL verified against the suite's CA, the client certificate."""
    directory = ssl_dir(root)
    return {
        "sslmode": sslmode,
        "sslrootcert": str(directory / "ca.crt"),
        "sslcert": str(directory / "client.crt"),
        "sslkey": str(directory / "client.key"),
        "sslpassword": (directory / "client.pass").read_text().strip(),
    }


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _signed(work: Path, name: str, subject: str, extensions: str, key_args: list[str]) -> None:
    """work/<name>.key and work/<name>.crt, signed by work/ca.*."""
    _openssl("req", "-new", *EC_KEY, *key_args, "-subj", subject,
             "-keyout", str(work / f"{name}.key"), "-out", str(work / f"{name}.csr"))
    (work / f"{name}.ext").write_text(extensions + "\n")
    _openssl("x509", "-req", "-in", str(work / f"{name}.csr"), "-CA", str(work / "ca.crt"),
             "-CAkey", str(work / "ca.key"), "-set_serial", str(secrets.randbits(63)), "-days", "30",
             "-extfile", str(work / f"{name}.ext"), "-out", str(work / f"{name}.crt"))


def make_certificates(client_dir: Path) -> Path:
    """Make the CA, server and client files; the client's go to client_dir, the rest stay in the
    returned private work directory (the caller moves the server's and removes it)."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is not on PATH: the SSL test server needs it")
    work = Path(tempfile.mkdtemp(prefix="pgkit-ssl-"))  # 0700
    _openssl("req", "-x509", *EC_KEY, "-nodes", "-days", "30", "-subj", "/CN=migration kit test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
             "-keyout", str(work / "ca.key"), "-out", str(work / "ca.crt"))
    _signed(work, "server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost", ["-nodes"])
    client_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    passfile = client_dir / "client.pass"
    descriptor = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(18) + "\n")
    _signed(work, "client", f"/CN={CERT_USER}", "extendedKeyUsage=clientAuth",
            ["-passout", f"file:{passfile}"])
    for name in ("ca.crt", "client.crt", "client.key"):
        shutil.copyfile(work / name, client_dir / name)
        os.chmod(client_dir / name, 0o600)
    return work


def enable(datadir: Path, os_user: str | None, root: Path) -> list[str]:
    """Put the certificates in place and CERT_USER's rules in pg_hba.conf; the postgresql.conf lines."""
    work = make_certificates(ssl_dir(root))
    try:
        for name in ("server.crt", "server.key", "ca.crt"):
            target = datadir / name
            shutil.copyfile(work / name, target)
            os.chmod(target, 0o600)
            if os_user:
                entry = pwd.getpwnam(os_user)
                os.chown(target, entry.pw_uid, entry.pw_gid)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    hba = datadir / "pg_hba.conf"
    rules = (
        f"hostnossl all {CERT_USER} 127.0.0.1/32 reject\n"
        f"hostssl all {CERT_USER} 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n"
    )
    hba.write_text(rules + hba.read_text())
    return [
        "ssl = on",
        "ssl_cert_file = 'server.crt'",
        "ssl_key_file = 'server.key'",
        "ssl_ca_file = 'ca.crt'",
        "log_connections = on",
    ]
