"""'alerts init DIR': a commented config.yaml generated from the config model (every key,
its default, what it does), the folders it names and a signing key only its owner reads;
it never overwrites."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel

from alerts.cli import cli
from alerts.config import Config, SourceConfig, load_config
from alerts.config_template import _section_model, field_comments
from alerts.errors import ConfigError


def init(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["init", *args], catch_exceptions=False)
    return result.exit_code, result.output


def every_key(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, info in model.model_fields.items():
        if name == "root":
            continue
        key = info.alias or name
        keys.append(prefix + key)
        inner = _section_model(info)
        if inner is not None and inner is not SourceConfig:
            keys += every_key(inner, f"{prefix}{key}.")
    return keys


@pytest.mark.parametrize(
    "model",
    [Config, *{_section_model(info) for info in Config.model_fields.values()} - {None}],
    ids=str,
)
def test_every_config_key_has_a_line_on_what_it_does(model: type[BaseModel]) -> None:
    comments = field_comments(model)
    missing = [name for name in model.model_fields if name != "root" and name not in comments]
    assert not missing, (
        f"add a '#:' comment above these fields of {model.__name__} in alerts/config.py"
    )


def test_init_writes_a_valid_config_naming_every_key_and_the_folders_it_names(
    tmp_path: Path,
) -> None:
    code, output = init(str(tmp_path / "site"))
    assert code == 0, output
    text = (tmp_path / "site" / "config.yaml").read_text(encoding="utf-8")
    config = load_config(tmp_path / "site" / "config.yaml")
    # Every key, top-level and in each section, is there (set, or commented out at its default).
    written = set()
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        found = re.match(r"^(\s*)(?:# )?(?:- )?(\w+):( |$)", line)
        if not found:
            continue
        depth = len(found.group(1)) // 2
        stack = [(d, k) for d, k in stack if d < depth] + [(depth, found.group(2))]
        written.add(".".join(k for _, k in stack))
    assert set(every_key(Config)) <= written, set(every_key(Config)) - written
    assert "# Public address of the web app" in text and "# timezone: Europe/London" in text
    assert config.sources[0].path == tmp_path / "site" / "advisories"
    assert config.database == f"sqlite:///{tmp_path / 'site' / 'var' / 'alerts.db'}"
    assert config.web.trusted_proxies == ("127.0.0.1",)
    for folder in ("advisories", "var", "var/feeds", "var/maildir"):
        assert (tmp_path / "site" / folder).is_dir()
    assert stat.S_IMODE((tmp_path / "site" / "var").stat().st_mode) == 0o700
    # The next three commands.
    assert output.endswith(
        f"Next:\n  cd {tmp_path / 'site'}\n"
        "  alerts run --once    # read advisories/, write var/feeds, mail to var/maildir\n"
        "  alerts web           # the pages at http://localhost:8000\n"
    )


def test_uncommenting_every_default_changes_nothing(tmp_path: Path) -> None:
    init(str(tmp_path / "site"))
    path = tmp_path / "site" / "config.yaml"
    text = path.read_text(encoding="utf-8")
    before = load_config(path)
    keys = {key.rsplit(".", 1)[-1] for key in every_key(Config)}
    opened, off = [], None
    for line in text.splitlines():
        found = re.match(r"^(\s*)# (\w+):( |$)", line)
        indent = len(line) - len(line.lstrip())
        if off is not None and indent > off:
            continue  # inside a section that is off by default (relay, DKIM, IMAP bounces)
        off = None
        if found and line.rstrip().endswith("# off by default"):
            off = indent
        elif found and found.group(2) in keys:
            line = found.group(1) + line.lstrip()[2:]
        opened.append(line)
    assert yaml.safe_load("\n".join(opened))["site"]["name"] == "Area Alerts"
    path.write_text("\n".join(opened), encoding="utf-8")
    assert load_config(path) == before


def test_the_signing_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    init(str(tmp_path / "site"))
    key = tmp_path / "site" / "var" / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_text(encoding="ascii").strip()) >= 32


def test_without_a_key_file_it_says_to_set_the_variable(tmp_path: Path) -> None:
    code, output = init(
        str(tmp_path / "site"), "--no-key-file", "--base-url", "https://alerts.example.org"
    )
    assert code == 0
    assert not (tmp_path / "site" / "var" / "secret.key").exists()
    assert "Set ALERTS_SECRET_KEY" in output
    assert (
        load_config(tmp_path / "site" / "config.yaml").site.base_url == "https://alerts.example.org"
    )


def test_init_refuses_to_overwrite_a_config(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "config.yaml").write_text("site: {name: Mine}\n", encoding="utf-8")
    code, output = init(str(tmp_path / "site"))
    assert code == 2
    assert "config.yaml already exists; nothing was changed" in output
    assert (tmp_path / "site" / "config.yaml").read_text(encoding="utf-8") == "site: {name: Mine}\n"
    assert not (tmp_path / "site" / "var").exists()


def test_init_keeps_a_signing_key_that_is_there(tmp_path: Path) -> None:
    (tmp_path / "site" / "var").mkdir(parents=True)
    (tmp_path / "site" / "var" / "secret.key").write_text("k" * 64, encoding="ascii")
    code, output = init(str(tmp_path / "site"))
    assert code == 0 and "Kept the existing signing key" in output
    assert (tmp_path / "site" / "var" / "secret.key").read_text(encoding="ascii") == "k" * 64


def test_init_takes_the_config_file_to_write_like_every_command(tmp_path: Path) -> None:
    code, _ = init("--config", str(tmp_path / "srv" / "alerts.yaml"))
    assert code == 0
    assert (
        load_config(tmp_path / "srv" / "alerts.yaml").sources[0].path
        == tmp_path / "srv" / "advisories"
    )


def test_trusted_proxies_are_addresses_or_networks(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("web:\n  trusted_proxies: [127.0.0.1, '10.0.0.0/8', '::1']\n", encoding="utf-8")
    assert load_config(path).web.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1")
    path.write_text("web:\n  trusted_proxies: [proxy.local]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'web\.trusted_proxies': list IP addresses or networks"):
        load_config(path)
