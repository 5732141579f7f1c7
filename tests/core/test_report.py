from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from garagelab.core import plots
from garagelab.core.report import Report, format_value
from garagelab.core.runs import RunStore
from garagelab.core.tour import run_tour


class _Collector(HTMLParser):
    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def check_html(path: Path) -> _Collector:
    """Parse a report: tags balance and every image it references exists beside it."""
    parser = _Collector()
    parser.feed(path.read_text())
    assert parser.errors == [] and parser.stack == []
    for src in parser.images:
        assert not src.startswith(("http:", "https:", "/")), src
        assert (path.parent / src).is_file(), src
    return parser


def test_report_html_parses_and_images_exist(tmp_path: Path) -> None:
    report = Report(tmp_path / "rep", "A <test> report")
    report.section("Numbers")
    report.table([{"name": "a<b", "value": 1.23456789}, {"name": "c", "value": 1e-9}])
    fig, (ax,) = plots.figure()
    ax.plot([1, 2, 3], [3, 1, 2])
    report.figure(fig, "curve", "a curve")
    outside = plots.save(plots.figure()[0], tmp_path / "elsewhere.png")
    report.section("More")
    report.image(outside, "copied in")
    report.code("x < y")
    path = report.write()
    parser = check_html(path)
    assert parser.images == ["curve.png", "elsewhere.png"]
    text = path.read_text()
    assert "a&lt;b" in text and "1.235" in text and "1.000e-09" in text
    assert '<a href="#s2">More</a>' in text


def test_format_value() -> None:
    assert format_value(float("nan")) == "nan"
    assert format_value(123456.0) == "1.235e+05"
    assert format_value(3) == "3"


@pytest.mark.slow
def test_tour_writes_report_with_a_section_per_step(runs_dir: Path) -> None:
    result = run_tour(RunStore(), quick=True)
    assert result.failures == ()
    assert result.report.parent.parent == runs_dir / "tour"
    check_html(result.report)
    (record,) = RunStore().list("tour")
    assert record.status == "done"
