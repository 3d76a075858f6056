"""Deployment packages: vodfc's (``vodfc package``) and the SDKs' dependency closures, zipped.

vodfc's zips come from :func:`devkit.package.build_packages` (the same code as ``vodfc package``);
if that module is missing, an equivalent zip is built here (pip ``--target`` + ``shared/`` +
``index.py``). Each SDK's closure is ``pip install --target`` of the SDK for CPython 3.10 on
``manylinux2014_x86_64``, stripped by the same rules as vodfc's packages (no caches, stubs, tests,
docs or pip bookkeeping), and zipped with the same compression, so the sizes compare like for like.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from devkit.package import build_packages, strip_tree

__all__ = ["FUNCTIONS", "LAYER", "SDKS", "Package", "build_sdk", "build_vodfc", "compile_tree", "unpack"]

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("upload_credentials", "vod_callback", "cleanup")
LAYER = "vodfc-postgres-layer"  # the PostgreSQL driver's FC layer (vodfc package builds it too)
# The SDKs as a developer would add them; versions pinned to what the bench environment has.
SDKS: dict[str, tuple[str, ...]] = {
    "sdk-current": ("alibabacloud-vod20170321",),
    "sdk-legacy": ("aliyun-python-sdk-core", "aliyun-python-sdk-vod"),
}
PLATFORM_ARGS = (
    "--platform", "manylinux2014_x86_64", "--python-version", "3.10", "--implementation", "cp",
    "--only-binary=:all:",
)  # fmt: skip


@dataclass
class Package:
    name: str
    zip_path: Path
    zip_bytes: int
    unpacked_bytes: int
    files: int
    source: str  # "vodfc package", "bench fallback", "pip --target"
    top: list[tuple[str, int]] = field(default_factory=list)  # biggest top-level entries (compressed)
    distributions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["zip_path"] = str(self.zip_path)
        return d


def _zip_stats(path: Path) -> tuple[int, int, list[tuple[str, int]]]:
    by_top: dict[str, int] = {}
    unpacked = files = 0
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            files += 1
            unpacked += info.file_size
            top = info.filename.split("/", 1)[0]
            by_top[top] = by_top.get(top, 0) + info.compress_size
    top = sorted(by_top.items(), key=lambda kv: -kv[1])[:8]
    return unpacked, files, top


def _zip_tree(tree: Path, path: Path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for p in sorted(tree.rglob("*")):
            if p.is_file() and not p.is_symlink():
                zf.write(p, p.relative_to(tree).as_posix())


def _pip(python: str, args: list[str]) -> None:
    proc = subprocess.run([python, "-m", "pip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pip {' '.join(args[:3])}... failed:\n{proc.stderr[-3000:]}")


def _pinned(dist: str) -> str:
    try:
        return f"{dist}=={metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return dist


def build_sdk(name: str, out: Path, *, pip_python: str) -> tuple[Package, Path]:
    """The SDK's closure for CPython 3.10 (``pip_python`` should be a 3.10 so markers are right)."""
    tree = out / name
    shutil.rmtree(tree, ignore_errors=True)
    reqs = [_pinned(d) for d in SDKS[name]]
    _pip(pip_python, ["install", "--quiet", "--no-compile", "--target", str(tree), *PLATFORM_ARGS, *reqs])
    strip_tree(tree)
    path = out / f"{name}.zip"
    _zip_tree(tree, path)
    unpacked, files, top = _zip_stats(path)
    dists = sorted(p.name[: -len(".dist-info")] for p in tree.glob("*.dist-info"))
    return Package(name, path, path.stat().st_size, unpacked, files, "pip --target", top, dists), tree


def build_vodfc(out: Path, *, log: Callable[[str], None]) -> list[Package]:
    """Each function's deployment zip and the layer's (named :data:`LAYER`), from ``vodfc
    package`` (devkit.package)."""
    out.mkdir(parents=True, exist_ok=True)
    # Like for like with the SDK closures (sources only): the bench compiles .pyc itself for
    # every runtime tree. Deployed zips also carry CPython 3.10 bytecode (about +1.8 MiB).
    previous = os.environ.get("VODFC_PACKAGE_NO_PYC")
    os.environ["VODFC_PACKAGE_NO_PYC"] = "1"
    try:
        built = build_packages(out, log=lambda line: log("  " + line))
    finally:
        if previous is None:
            os.environ.pop("VODFC_PACKAGE_NO_PYC", None)
        else:
            os.environ["VODFC_PACKAGE_NO_PYC"] = previous
    packages = []
    for b in built:
        unpacked, files, top = _zip_stats(b.path)
        packages.append(
            Package(b.path.stem, b.path, b.size, unpacked, files, "vodfc package", top, list(b.distributions))
        )
    return packages


def unpack(zip_path: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    return dest


def compile_tree(python: str, tree: Path) -> None:
    """Precompile ``tree`` for ``python`` (what a package that ships .pyc files gives FC)."""
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", str(tree)],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def python_for_packages() -> str | None:
    """A CPython 3.10 (FC's ``python3.10`` runtime) to run and build packages with, if any."""
    candidates = [os.environ.get("BENCH_PYTHON310", ""), shutil.which("python3.10") or ""]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))
    candidates += ["/usr/bin/python3.10", "/usr/local/bin/python3.10"]
    for c in candidates:
        if not c or not Path(c).exists():
            continue
        try:
            out = subprocess.run(
                [c, "-c", "import sys, ssl, sqlite3; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "3.10":
            return c
    return None


if __name__ == "__main__":  # pragma: no cover - manual use
    print(python_for_packages() or sys.executable)
