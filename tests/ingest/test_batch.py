"""Ingesting a batch into a real store (SQLite and PostgreSQL): bad files are reported and
skipped while the rest go in; identity and updates; progress reporting."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.areas import Gazetteer
from alerts.config import SourceConfig
from alerts.ingest import IngestReport, ingest_files
from alerts.store import Store
from alerts.types import Status
from tests.support import NOW, SAMPLE
from tests.support.sections import ingest_from

LATER = NOW + timedelta(days=1, hours=3)  # past the one-update-a-day interval
SAMPLE_TEXT = SAMPLE.read_text(encoding="utf-8")
SAMPLE_URL = (
    "https://www.kent.police.uk/news/kent/news2/policing-news/2012/"
    "safety-advice-after-telephone-fraudster-poses-as-kent-police-officer/"
)


def ingest(
    folder: Path, store: Store, gazetteer: Gazetteer, *, now: datetime = NOW
) -> IngestReport:
    return ingest_files([folder], store, gazetteer, now=now)


def counts(report: IngestReport) -> tuple[int, int, int, int]:
    c = report.counts()
    return c["new"], c["updated"], c["unchanged"], c["rejected"]


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# -- bad files in a batch ------------------------------------------------------------------

GOOD_FRONT = "title: Burglary appeal\nurl: https://www.kent.police.uk/news/{n}/\npublish:\n  date: 10:00 01/12/2020\n"

BAD_FILES: dict[str, bytes] = {
    "no-front-matter.md": b"# Heading\n\nText only.\n",
    "broken-yaml.md": b"```yaml\ntitle: ok\nog: [unclosed\n```\nbody\n",
    "no-title.md": b"```yaml\nurl: https://www.kent.police.uk/news/x/\n```\nbody\n",
    "no-url.md": b"```yaml\ntitle: Appeal\n```\nbody\n",
    "relative-url.md": b"```yaml\ntitle: Appeal\nurl: /news/x/\n```\nbody\n",
    "impossible-date.md": b"```yaml\ntitle: A\nurl: https://a.example/1\npublish:\n  date: 14:30 31/02/2020\n```\n",
    "impossible-time.md": b"```yaml\ntitle: A\nurl: https://a.example/2\npublish:\n  date: 25:61 18/12/2020\n```\n",
    "latin1.md": b"```yaml\ntitle: Caf\xe9\nurl: https://a.example/3\n```\n",
    "binary.md": b"\x7fELF\x02\x01\x01\x00\x00\x00",
    "empty.md": b"",
    "unclosed.md": b"```yaml\ntitle: A\nurl: https://a.example/4\n",
    "list.md": b"---\n- a\n- b\n---\n",
}


@pytest.fixture
def messy_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "batch"
    shutil.copytree(
        SAMPLE.parent, folder, ignore=lambda d, names: [n for n in names if n != SAMPLE.name]
    )
    for name, content in BAD_FILES.items():
        write(folder, name, content)
    write(folder, "zz-good.md", f"```yaml\n{GOOD_FRONT.format(n=1)}```\nA theft in Chatham.\n")
    with (folder / "huge.md").open("wb") as handle:
        handle.truncate(50_000_000)  # sparse
    (folder / "folder.md").mkdir()
    return folder


def test_bad_files_are_reported_and_skipped_while_the_rest_are_stored(
    messy_folder: Path, store: Store, gazetteer: Gazetteer
) -> None:
    report = ingest(messy_folder, store, gazetteer)
    assert counts(report) == (2, 0, 0, len(BAD_FILES) + 2)
    assert not report.ok
    reported = {Path(error.path).name: error for error in report.rejected}
    assert set(reported) == {*BAD_FILES, "huge.md", "folder.md"}
    for error in report.rejected:
        assert str(error).startswith(str(messy_folder))
    lines = {name: error.line for name, error in reported.items()}
    assert lines["broken-yaml.md"] == 3
    assert lines["latin1.md"] == 2
    assert lines["impossible-date.md"] == 5
    assert lines["unclosed.md"] == 1
    for name, error in reported.items():
        assert error.hint, f"{name} has no hint: {error}"
        assert "\n" not in str(error)
    assert store.advisories.count() == 2


def test_files_are_read_in_a_stable_order_and_hidden_ones_skipped(
    tmp_path: Path, store: Store, gazetteer: Gazetteer
) -> None:
    folder = tmp_path / "adv"
    write(folder, ".draft.md", b"junk")
    write(folder, ".git/x.md", b"junk")
    write(folder, "notes.txt", b"not markdown")
    write(folder, "sub/b.markdown", f"```yaml\n{GOOD_FRONT.format(n=2)}```\n")
    write(folder, "a.md", f"```yaml\n{GOOD_FRONT.format(n=1)}```\n")
    report = ingest(folder, store, gazetteer)
    assert counts(report) == (2, 0, 0, 0)
    assert [a.source for a in store.advisories.find()] == [
        str(folder / "sub/b.markdown"),
        str(folder / "a.md"),
    ]


def test_a_missing_path_is_reported(tmp_path: Path, store: Store, gazetteer: Gazetteer) -> None:
    report = ingest_files([tmp_path / "nowhere", SAMPLE], store, gazetteer, now=NOW)
    assert counts(report) == (1, 0, 0, 1)
    assert str(report.rejected[0]).startswith(f"{tmp_path / 'nowhere'}: no such file or folder")


# -- identity and updates -------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "adv"
    write(folder, SAMPLE.name, SAMPLE_TEXT)
    return folder


def test_same_file_twice_is_stored_once(folder: Path, store: Store, gazetteer: Gazetteer) -> None:
    assert counts(ingest(folder, store, gazetteer)) == (1, 0, 0, 0)
    assert counts(ingest(folder, store, gazetteer, now=LATER)) == (0, 0, 1, 0)
    [item] = store.advisories.find()
    assert (item.revision, item.first_seen_at, item.updated_at) == (1, NOW, NOW)


def test_sample_is_stored_as_concerning_medway_tagged_kent_and_medway(
    folder: Path, store: Store, gazetteer: Gazetteer
) -> None:
    ingest(folder, store, gazetteer)
    item = store.advisories.get(SAMPLE_URL)
    assert item.areas == ("medway",)
    assert set(item.tags) == {"kent", "medway"}
    assert item.published_at.utcoffset() == timedelta(0)
    assert item.published_at.isoformat() == "2020-12-18T14:30:00+00:00"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "defrauded a **Medway** man of money.\n\nThe victim",
            "defrauded a **Medway** man of £500.\n\nThe victim",
        ),
        ("title: Safety advice after", "title: Updated safety advice after"),
    ],
    ids=["body", "title"],
)
def test_changed_body_or_title_is_an_update_with_a_new_revision(
    folder: Path, store: Store, gazetteer: Gazetteer, old: str, new: str
) -> None:
    ingest(folder, store, gazetteer)
    [before] = store.advisories.find()
    assert old in SAMPLE_TEXT
    write(folder, SAMPLE.name, SAMPLE_TEXT.replace(old, new))
    assert counts(ingest(folder, store, gazetteer, now=LATER)) == (0, 1, 0, 0)
    [after] = store.advisories.find()
    assert after.id == before.id
    assert after.revision == 2
    assert (after.first_seen_at, after.changed_at, after.updated_at) == (NOW, LATER, LATER)
    assert after.title != before.title or after.body_html != before.body_html


def test_withdrawal_is_an_update_without_a_new_revision(
    folder: Path, store: Store, gazetteer: Gazetteer
) -> None:
    ingest(folder, store, gazetteer)
    write(
        folder, SAMPLE.name, SAMPLE_TEXT.replace("area: Kent\n", "area: Kent\nstatus: withdrawn\n")
    )
    report = ingest(folder, store, gazetteer, now=LATER)
    assert counts(report) == (0, 1, 0, 0)
    [item] = store.advisories.find()
    assert item.status is Status.WITHDRAWN
    assert (item.revision, item.changed_at, item.updated_at) == (1, NOW, LATER)
    assert store.advisories.find(live_at=LATER) == []


def test_advisory_dated_in_the_repeated_autumn_hour_is_unchanged_when_ingested_again(
    tmp_path: Path, store: Store, gazetteer: Gazetteer
) -> None:
    # Zone-aware times in that hour never compare equal to the stored UTC instant (PEP 495);
    # the parser's fixed offsets keep a re-ingest from looking like an update.
    folder = tmp_path / "adv"
    front = "title: Night appeal\nurl: https://a.example/n\npublish:\n  date: 01:30 25/10/2020\nexpires: 01:45 25/10/2020\n"
    write(folder, "night.md", f"```yaml\n{front}```\nIn Dover.\n")
    assert counts(ingest(folder, store, gazetteer)) == (1, 0, 0, 0)
    assert counts(ingest(folder, store, gazetteer, now=LATER)) == (0, 0, 1, 0)
    [item] = store.advisories.find()
    assert item.published_at.isoformat() == "2020-10-25T00:30:00+00:00"


def test_expiry_and_priority_are_stored(folder: Path, store: Store, gazetteer: Gazetteer) -> None:
    text = SAMPLE_TEXT.replace(
        "area: Kent\n", "area: Kent\nexpires: 09:00 01/01/2021\npriority: urgent\n"
    )
    write(folder, SAMPLE.name, text)
    ingest(folder, store, gazetteer)
    [item] = store.advisories.find()
    assert item.priority.value == "urgent"
    assert item.expires_at is not None
    assert item.expires_at.isoformat() == "2021-01-01T09:00:00+00:00"
    assert item.is_live(item.expires_at - timedelta(minutes=1))
    assert not item.is_live(item.expires_at)


def test_same_advisory_under_two_file_names_is_one_row(
    folder: Path, store: Store, gazetteer: Gazetteer
) -> None:
    write(folder, "copy-of-the-same.md", SAMPLE_TEXT)
    assert counts(ingest(folder, store, gazetteer)) == (1, 0, 1, 0)
    assert store.advisories.count() == 1


def test_undated_advisory_keeps_its_first_seen_time_when_ingested_again(
    tmp_path: Path, store: Store, gazetteer: Gazetteer
) -> None:
    folder = tmp_path / "adv"
    write(
        folder,
        "undated.md",
        "```yaml\ntitle: Undated appeal\nurl: https://a.example/u\n```\nIn Dover.\n",
    )
    first = ingest(folder, store, gazetteer)
    assert any("no publish.date" in w for w in first.warnings)
    assert counts(ingest(folder, store, gazetteer, now=LATER)) == (0, 0, 1, 0)
    [item] = store.advisories.find()
    assert item.published_at == NOW
    assert item.first_seen_at == NOW


def test_unknown_front_matter_survives_the_store(
    tmp_path: Path, store: Store, gazetteer: Gazetteer
) -> None:
    folder = tmp_path / "adv"
    front = (
        GOOD_FRONT.format(n=9)
        + "category: fraud\nodd: .nan\nwhen: 2020-01-02\nnested: {a: [1, 2]}\n"
    )
    write(folder, "x.md", f"```yaml\n{front}```\n")
    assert counts(ingest(folder, store, gazetteer)) == (1, 0, 0, 0)
    [item] = store.advisories.find()
    assert item.extra == {
        "category": "fraud",
        "odd": "nan",
        "when": "2020-01-02",
        "nested": {"a": [1, 2]},
    }


# -- progress and sources -------------------------------------------------------------------


def test_progress_is_told_the_total_then_each_file(
    messy_folder: Path, store: Store, gazetteer: Gazetteer
) -> None:
    calls: list[tuple[str, int]] = []

    def start(total: int) -> Callable[[int], None]:
        calls.append(("total", total))
        return lambda n: calls.append(("done", n))

    ingest_files([messy_folder], store, gazetteer, now=NOW, progress=start)
    files = len(BAD_FILES) + 4  # the sample, zz-good.md, huge.md, folder.md
    assert calls == [("total", files)] + [("done", 1)] * files


def test_ingest_sources_reads_every_configured_folder(
    tmp_path: Path, store: Store, gazetteer: Gazetteer
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    write(one, "a.md", f"```yaml\n{GOOD_FRONT.format(n=1)}```\n")
    write(two, "b.md", f"```yaml\n{GOOD_FRONT.format(n=2)}```\n")
    report = ingest_from(
        [SourceConfig(path=one), SourceConfig(path=two)], store, gazetteer, now=NOW
    )
    assert counts(report) == (2, 0, 0, 0)


# -- generated front matter all the way into the store -----------------------------------------

STORE_JUNK = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ODD_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30), st.binary(max_size=10),
    st.sampled_from(["14:30 18/12/2020", "2199-12-31T23:59:59-12:00", "1900-01-01T00:00:00+14:00", "ME4", "urgent"]),
)  # fmt: skip
ODD_VALUES = st.recursive(
    ODD_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@STORE_JUNK
@given(
    extra=st.dictionaries(
        st.sampled_from(
            ["publish", "expires", "og", "guid", "areas", "status", "priority", "summary", "x", "y"]
        ),
        ODD_VALUES,
        max_size=5,
    ),
    title=st.text(min_size=1, max_size=200),
    body=st.text(max_size=300),
)
def test_whatever_parses_can_be_stored(
    tmp_path_factory: pytest.TempPathFactory,
    store: Store,
    gazetteer: Gazetteer,
    extra: dict,
    title: str,
    body: str,
) -> None:
    front = {"title": title, "url": "https://a.example/fuzz", **extra}
    data = f"```yaml\n{yaml.safe_dump(front, allow_unicode=True)}```\n{body}"
    folder = tmp_path_factory.mktemp("fuzz")
    write(folder, "a.md", data.encode("utf-8", "surrogatepass"))
    report = ingest(folder, store, gazetteer)
    assert sum(counts(report)) == 1
    if report.rejected:
        assert "database refused" not in str(report.rejected[0])
