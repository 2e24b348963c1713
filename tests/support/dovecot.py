"""A private Dovecot for tests: IMAP over TLS on a loopback port of its own, its config,
state and log under a temporary folder, one user from a passwd-file, serving one Maildir
as that user's INBOX. Never the system's Dovecot: nothing of /etc/dovecot is read or
changed (``dovecot -c`` with a config written here), and the instance is stopped (and its
files removed) at the end.

The server's certificate is issued by a CA made for the test (trustme, on the locked
``cryptography``), so the client must be told to trust it (``ca_file``).

Needs the Debian package (``scripts/install-system-packages dovecot-imapd``) and root, as
Dovecot's master does (it starts its login processes as the ``dovenull`` user)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import trustme

from tests.support.postfix import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "bounces"
PASSWORD = "correct horse battery staple"


def unavailable() -> str | None:
    """Why a private Dovecot cannot run here (None when it can)."""
    if not Path(DOVECOT).exists() or not Path("/usr/lib/dovecot/imap").exists():
        return "Dovecot is not installed: run scripts/install-system-packages dovecot-imapd"
    if os.geteuid() != 0:
        return "a private Dovecot needs root (its master starts login processes as dovenull)"
    for user in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"there is no {user} user (the Debian package makes it)"
    return None


class PrivateDovecot:
    """``maildir``: the folder served as INBOX (made if missing), read and written as
    ``mail_user`` (the owner of the files: ``postfix`` when Postfix delivers into it);
    ``password``: the user's; ``mechanisms``: the SASL mechanisms offered."""

    def __init__(
        self,
        *,
        maildir: Path | None = None,
        mail_user: str = "nobody",
        password: str = PASSWORD,
        mechanisms: str = "plain login",
    ):
        self.port = free_port()
        self.password = password
        #: The SASL mechanisms offered (``auth_mechanisms``).
        self.mechanisms = mechanisms
        # Not under pytest's tmp_path: the mail user must be able to reach these folders.
        self.root = Path(tempfile.mkdtemp(prefix="alerts-dovecot-"))
        self.root.chmod(0o755)
        self.maildir = maildir or self.root / "mail" / USER
        self.mail_user = pwd.getpwnam(mail_user)
        self.ca = trustme.CA()
        self.ca_file = self.root / "ca.pem"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateDovecot:
        uid, gid = self.mail_user.pw_uid, self.mail_user.pw_gid
        for folder in (self.root / "run", self.root / "state"):
            folder.mkdir(mode=0o755)
        home = self.root / "home"
        home.mkdir()
        os.chown(home, uid, gid)
        if not self.maildir.exists():
            self.maildir.parent.mkdir(parents=True, exist_ok=True)
            os.chown(self.maildir.parent, uid, gid)
        for sub in ("", "new", "cur", "tmp"):
            (self.maildir / sub).mkdir(exist_ok=True)
            os.chown(self.maildir / sub, uid, gid)
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        server.private_key_and_cert_chain_pem.write_to_path(str(self.root / "server.pem"))
        (self.root / "server.pem").chmod(0o600)
        (self.root / "users").write_text(
            f"{USER}:{{PLAIN}}{self.password}::::::\n", encoding="utf-8"
        )
        dh = Path("/usr/share/dovecot/dh.pem")
        settings = [
            f"base_dir = {self.root / 'run'}",
            f"state_dir = {self.root / 'state'}",
            f"log_path = {self.root / 'dovecot.log'}",
            "protocols = imap",
            "listen = 127.0.0.1",
            "ssl = required",
            f"ssl_cert = <{self.root / 'server.pem'}",
            f"ssl_key = <{self.root / 'server.pem'}",
            *([f"ssl_dh = <{dh}"] if dh.exists() else []),
            "disable_plaintext_auth = yes",
            f"auth_mechanisms = {self.mechanisms}",
            "default_login_user = dovenull",
            "default_internal_user = dovecot",
            # The mail user may be a system account (postfix: uid 108).
            "first_valid_uid = 1",
            "first_valid_gid = 1",
            f"mail_location = maildir:{self.maildir}",
            "mail_fsync = never",
            "passdb {",
            "  driver = passwd-file",
            f"  args = scheme=PLAIN username_format=%u {self.root / 'users'}",
            "}",
            "userdb {",
            "  driver = static",
            f"  args = uid={uid} gid={gid} home={home}",
            "}",
            "service imap-login {",
            "  inet_listener imap {",
            "    port = 0",
            "  }",
            "  inet_listener imaps {",
            "    address = 127.0.0.1",
            f"    port = {self.port}",
            "    ssl = yes",
            "  }",
            "}",
            "service anvil {",
            "  chroot =",
            "}",
            "service imap-login {",
            "  chroot =",
            "}",
        ]
        config = self.root / "dovecot.conf"
        config.write_text("\n".join(settings) + "\n")
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"the private Dovecot exited: {stderr} {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the private Dovecot did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def deliver(self, name: str, data: bytes) -> Path:
        """Put one message into the Maildir's new/, as a delivery agent would."""
        path = self.maildir / "new" / name
        path.write_bytes(data)
        os.chown(path, self.mail_user.pw_uid, self.mail_user.pw_gid)
        return path

    def __enter__(self) -> PrivateDovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
