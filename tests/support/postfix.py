"""A private Postfix for tests: its own config, queue and mail folders under a temporary
directory, listening on a loopback port of its own, relaying everything to a loopback
sink (``relayhost``), with no DNS; bounces for ``bounce_domain`` are delivered by
Postfix's virtual(8) agent into one Maildir. Never the system's Postfix: nothing of
/etc/postfix is changed, and the instance is stopped (and its files removed) at the end.

Needs the Debian package (``scripts/install-system-packages postfix``) and root, as
Postfix's master does."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
DAEMONS = Path("/usr/lib/postfix/sbin")


def unavailable() -> str | None:
    """Why a private Postfix cannot run here (None when it can)."""
    if not Path(POSTFIX).exists() or not (DAEMONS / "master").exists():
        return "Postfix is not installed: run scripts/install-system-packages postfix"
    if os.geteuid() != 0:
        return "a private Postfix needs root (its master daemon drops to the postfix user)"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "there is no postfix user (the Debian package makes it)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostfix:
    def __init__(self, *, relay_port: int, bounce_domain: str):
        self.relay_port = relay_port
        self.bounce_domain = bounce_domain
        self.port = free_port()
        # Not under pytest's tmp_path: Postfix's daemons run as the postfix user and must
        # be able to reach these folders.
        self.root = Path(tempfile.mkdtemp(prefix="alerts-postfix-"))
        self.root.chmod(0o755)
        self.config = self.root / "etc"
        self.maildir = self.root / "mail" / "bounces"

    def start(self) -> PrivatePostfix:
        user = pwd.getpwnam("postfix")
        self.config.mkdir()
        (self.root / "mail").mkdir()
        os.chown(self.root / "mail", user.pw_uid, user.pw_gid)
        (self.root / "queue").mkdir(mode=0o755)
        (self.root / "data").mkdir()
        os.chown(self.root / "data", user.pw_uid, user.pw_gid)
        main = {
            "compatibility_level": "3.6",
            "config_directory": str(self.config),
            "queue_directory": str(self.root / "queue"),
            "data_directory": str(self.root / "data"),
            "daemon_directory": str(DAEMONS),
            "meta_directory": "/etc/postfix",
            "mail_owner": "postfix",
            "myhostname": "postfix.test",
            "mydomain": "postfix.test",
            "myorigin": "postfix.test",
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "relayhost": f"[127.0.0.1]:{self.relay_port}",
            "smtp_host_lookup": "native",
            "disable_dns_lookups": "yes",
            "smtp_tls_security_level": "none",
            "smtputf8_enable": "no",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "virtual_mailbox_domains": self.bounce_domain,
            "virtual_mailbox_base": str(self.root / "mail"),
            "virtual_mailbox_maps": "static:bounces/",
            "virtual_uid_maps": f"static:{user.pw_uid}",
            "virtual_gid_maps": f"static:{user.pw_gid}",
            "maillog_file": str(self.root / "postfix.log"),
            "maillog_file_prefixes": str(self.root),
            "bounce_queue_lifetime": "0",
            "maximal_queue_lifetime": "0",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "import_environment": "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C",
        }
        (self.config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        services = [
            f"127.0.0.1:{self.port} inet n - n - - smtpd",
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "local unix - n n - - local",
            "virtual unix - n n - - virtual",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
            "tlsmgr unix - - n 1000? 1 tlsmgr",
        ]
        (self.config / "master.cf").write_text("\n".join(services) + "\n")
        self._postfix("check")
        self._postfix("start")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the private Postfix did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._postfix("stop")
        # master takes a moment to go; its pid file says when.
        deadline = time.monotonic() + 10
        pid = self.root / "queue" / "pid" / "master.pid"
        while pid.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "postfix.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def delivered(self) -> list[Path]:
        new = self.maildir / "new"
        return sorted(new.iterdir()) if new.is_dir() else []

    def _postfix(self, *command: str) -> None:
        done = subprocess.run(
            # script(1) gives postfix a terminal: it writes its errors to stderr only then
            # (otherwise to syslog, which a container may not have).
            ["script", "-qec", " ".join([POSTFIX, "-c", str(self.config), *command]), "/dev/null"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"},
        )
        if done.returncode:
            raise RuntimeError(
                f"postfix {' '.join(command)}: {done.stderr.strip() or done.stdout.strip()}"
            )

    def __enter__(self) -> PrivatePostfix:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
