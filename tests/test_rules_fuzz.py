"""Fuzz test of the rule and config loader (issue 17): random YAML (random structures over the real keys,
scalars of every kind including huge numbers, nan and inf, deep nesting, anchors and aliases, tags),
random bytes and broken encodings, written as `rules/*.yaml` or `config.yaml` and loaded through the
functions `monitor check` uses. Whatever comes in, the only failure is the project's own `Invalid` with
printable `file:line` problems: never another exception, and bounded time and memory per case."""

from __future__ import annotations

import shutil
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config.settings import load_settings
from monitor.config.yamlfile import Invalid
from monitor.rules.load import build_rules, load_or_problems

ROOT = Path(__file__).resolve().parent.parent
MEMORY_PER_CASE = 64 * 1024 * 1024
FUZZ = settings(
    max_examples=120,
    deadline=3000,  # ms per case, on a shared machine; a real case takes a few ms
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same cases every run: a failure here is reproducible
)

RULE_KEYS = [
    "time_progress", "mode", "budget", "base", "red_below", "yellow_below", "indicators", "cumulative",
    "blue_from", "level", "tolerance", "qualitative", "green", "yellow", "red", "impossible", "combine",
    "profiles", "profile_names", "overrides", "name", "match", "fund_flag", "unit", "department",
    "project", "category", "level2", "budget_min", "budget_max", "profile",
]  # fmt: skip
CONFIG_KEYS = [
    "database", "url", "path", "mail", "mode", "file_dir", "smtp", "host", "port", "retry",
    "max_attempts", "lease_seconds", "notifications", "holidays", "top_red", "schedule", "checkpoints",
    "month", "run_time", "reminder_days_before_deadline", "watch_seconds", "results_application",
    "key_budget_min", "key_rate_below", "months", "web", "link_days", "rules_dir", "templates_dir",
    "time_zone", "service", "http_port", "instance_name", "template_override_dir",
]  # fmt: skip
WORDS = [
    "0", "-1", "0.60", "1e309", "-1e309", ".nan", ".inf", "-.inf", "1e-999999999", "9" * 5000,
    "0x1F", "0o17", "0b101", "1_000", "190:20:30", "10:30", "2025-13-45", "2025-02-30", "2025-10-01",
    "~", "null", "yes", "no", "on", "达成目标", "worst", "matrix", "month", "day", "'quoted'",
    '"\\u0000"', '"\\ud800"', "!!binary AAAA", "!!binary '@@@'", "!!int x", "!!float y",
    "!!bool maybe", "!!timestamp now", "!!python/object/apply:os.system ['id']", "!foo bar", "&a 1",
    "*a", "*undefined", "<<: *a", "? [a, b]", "{", "}", "[", "]", ": ", "- ", "'", '"', "#", "|", ">",
    "---", "...", "%YAML 1.1", "\t",
]  # fmt: skip


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(10**4000), max_value=10**4000),
        st.floats(allow_nan=True, allow_infinity=True),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.text(max_size=30),
        st.sampled_from(WORDS),
        st.dates(),
    )


def structures(keys: list[str]) -> st.SearchStrategy[Any]:
    key = st.one_of(st.sampled_from(keys), st.text(max_size=8), st.integers(-5, 5))
    return st.recursive(
        scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=6),
            st.dictionaries(key, inner, max_size=6),
        ),
        max_leaves=40,
    )


def as_yaml(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, default_flow_style=None, sort_keys=False)


@st.composite
def yaml_texts(draw: st.DrawFn, keys: list[str]) -> str:
    """Dumped random structures, then mangled: lines cut or swapped, anchors and aliases, words inserted,
    deep nesting, a nested alias bomb."""
    top = st.dictionaries(st.sampled_from(keys), structures(keys), max_size=5)
    text = as_yaml(draw(st.one_of(top, top, structures(keys))))  # mostly a mapping, as real files are
    lines = text.splitlines()
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["word", "anchor", "alias", "cut", "indent", "deep", "bomb"]))
        # between top-level entries (the file stays well-formed up to there) or anywhere
        starts = [i for i, line in enumerate(lines) if line[:1].isalpha()] + [len(lines)]
        at = draw(st.one_of(st.sampled_from(starts), st.integers(0, len(lines))))
        if kind == "word":
            lines.insert(at, draw(st.sampled_from(keys)) + ": " + draw(st.sampled_from(WORDS)))
        elif kind == "anchor" and lines:
            i = min(at, len(lines) - 1)
            lines[i] = lines[i].replace(": ", ": &a ", 1)
        elif kind == "alias":
            lines.insert(at, draw(st.sampled_from(keys)) + ": *a")
        elif kind == "cut" and lines:
            i = min(at, len(lines) - 1)
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif kind == "indent":
            lines.insert(at, " " * draw(st.integers(0, 9)) + draw(st.sampled_from(WORDS)))
        elif kind == "deep":
            n = draw(st.integers(1, 3000))
            opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ("- ", "")]))
            lines.insert(at, draw(st.sampled_from(keys)) + ": " + opener * n + "1" + closer * n)
        elif kind == "bomb":
            bomb = ["x0: &x0 [l, l, l, l, l, l, l, l, l]"]
            bomb += [f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]" for i in range(1, 10)]
            lines[at:at] = bomb
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))


def encodings(text: str) -> st.SearchStrategy[bytes]:
    return st.sampled_from(
        [
            text.encode("utf-8"),
            b"\xef\xbb\xbf" + text.encode("utf-8"),
            text.encode("gb18030"),
            text.encode("utf-16"),
            text.encode("utf-8")[: len(text.encode("utf-8")) // 2],
        ]
    )


@st.composite
def files(draw: st.DrawFn, keys: list[str]) -> bytes:
    kind = draw(st.sampled_from(["yaml", "yaml", "yaml", "bytes", "mixed"]))
    if kind == "bytes":
        return draw(st.binary(max_size=400))
    text = draw(yaml_texts(keys))
    data = draw(encodings(text))
    if kind == "mixed":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=20)) + data[at:]
    return data


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "rules").mkdir()
        shutil.copy(ROOT / "rules" / "default.yaml", root / "rules" / "default.yaml")
        yield root


def load_bounded(load: Any) -> None:
    """Run `load`; only Invalid may come out, every problem printable; at most MEMORY_PER_CASE."""
    tracemalloc.start()
    try:
        load()
    except Invalid as exc:
        assert exc.problems, "an Invalid without problems"
        for p in exc.problems:
            assert p.file and p.message, p
            assert len(str(p)) < 2000, str(p)[:300]
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MEMORY_PER_CASE, f"{peak / 2**20:.0f} MiB for one case"


@FUZZ
@given(data=files(RULE_KEYS))
def test_random_rule_files_give_only_clear_errors(folder: Path, data: bytes) -> None:
    path = folder / "rules" / "zz_local.yaml"
    path.write_bytes(data)

    def check() -> None:  # as App.check: the file alone, then merged with the others
        doc = load_or_problems(path)
        build_rules([doc])
        build_rules([load_or_problems(folder / "rules" / "default.yaml"), doc])

    load_bounded(check)


@FUZZ
@given(data=files(CONFIG_KEYS))
def test_random_config_files_give_only_clear_errors(folder: Path, data: bytes) -> None:
    path = folder / "config.yaml"
    path.write_bytes(data)
    load_bounded(lambda: load_settings(path, env={}))


@FUZZ
@given(data=structures(RULE_KEYS + CONFIG_KEYS))
def test_random_structures_dumped_as_yaml_give_only_clear_errors(folder: Path, data: Any) -> None:
    """Well-formed YAML of any shape, as a rule file and as config.yaml."""
    text = as_yaml(data)
    (folder / "rules" / "zz_local.yaml").write_text(text, encoding="utf-8")
    (folder / "config.yaml").write_text(text, encoding="utf-8")
    load_bounded(lambda: build_rules([load_or_problems(folder / "rules" / "zz_local.yaml")]))
    load_bounded(lambda: load_settings(folder / "config.yaml", env={}))
