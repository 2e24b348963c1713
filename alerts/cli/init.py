"""``alerts init DIR``: a working installation to start from: a commented config.yaml
(every key, from the config model), the folders it names and the key that signs links."""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path
from typing import Any

import click

from alerts.cli import cli
from alerts.config import load_config
from alerts.config_template import config_template
from alerts.errors import ConfigError

#: Where 'alerts web' listens and the reverse proxy (deploy/nginx) connects from: the
#: only address whose X-Forwarded-For it believes.
PROXY = "127.0.0.1"


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), required=False)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The config file to write (its folder is the installation) [default: DIRECTORY/config.yaml].",
)
@click.option(
    "--base-url",
    default="http://localhost:8000",
    show_default=True,
    help="Public address of the web pages (https://alerts.example.org behind the proxy).",
)
@click.option(
    "--database",
    default="sqlite:///var/alerts.db",
    show_default=True,
    help="sqlite:///PATH (relative to DIRECTORY) or postgresql://user@host/dbname.",
)
@click.option(
    "--key-file/--no-key-file",
    default=True,
    show_default=True,
    help="Write a random link-signing key to var/secret.key (mode 0600); "
    "--no-key-file: you set ALERTS_SECRET_KEY in the service's environment instead.",
)
def init(
    directory: Path | None, config_path: Path | None, base_url: str, database: str, key_file: bool
) -> None:
    """Make a new installation: config.yaml and folders.

    DIRECTORY gets a commented config.yaml, an advisories folder, var/ and a signing key.
    Every key of the configuration is in the file with its default and what it does.
    Nothing is overwritten: an existing config.yaml stops it.
    """
    if directory is None and config_path is None:
        raise click.UsageError("give the folder to create, e.g. 'alerts init site'")
    if directory is not None and config_path is not None and config_path.parent != directory:
        raise click.UsageError("give either DIRECTORY or --config (the file to write), not both")
    config_file = config_path or (directory or Path()) / "config.yaml"
    directory = config_file.parent
    if config_file.exists():
        raise ConfigError(
            "config.yaml already exists; nothing was changed",
            where=str(config_file),
            hint="edit it, or give 'alerts init' a new folder",
        )
    settings: dict[str, Any] = {
        "database": database,
        "sources": [{"path": "advisories"}],
        "site": {"base_url": base_url},
        "web": {"trusted_proxies": [PROXY]},
        "security": {"secret_key_file": "var/secret.key"},
    }
    text = config_template(settings)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "advisories").mkdir(exist_ok=True)
    # The database, the signing key and the outgoing mail: for the service's user only.
    (directory / "var").mkdir(mode=0o700, exist_ok=True)
    for folder in ("feeds", "maildir"):
        (directory / "var" / folder).mkdir(exist_ok=True)
    # Exclusive create: two 'alerts init' at once cannot both write it.
    with open(config_file, "x", encoding="utf-8") as file:
        file.write(text)
    load_config(
        config_file
    )  # what it wrote is a valid config (a test of the template, at every init)
    made = [config_file, directory / "advisories", directory / "var"]
    key = directory / "var" / "secret.key"
    if key_file:
        made.append(key)
        if not _write_key(key):
            click.echo(f"Kept the existing signing key {key}.")
    click.echo("Created " + ", ".join(str(path) for path in made) + ".")
    if not key_file:
        click.echo(
            "Set ALERTS_SECRET_KEY to a long random value in the environment of every alerts process,"
        )
        click.echo("e.g. $(python3 -c 'import secrets; print(secrets.token_urlsafe(48))').")
    click.echo("Next:")
    click.echo(f"  cd {shlex.quote(str(directory))}")
    click.echo("  alerts run --once    # read advisories/, write var/feeds, mail to var/maildir")
    click.echo(f"  alerts web           # the pages at {base_url}")


def _write_key(path: Path) -> bool:
    """A random key, readable by its owner only. False when one is there already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(secrets.token_urlsafe(48) + "\n")
    return True
