"""``vodfc package``: one deployment zip per function and the PostgreSQL driver's layer, for FC's
``python3.10`` runtime (Linux x86_64).

Each function zip holds, at its root, the function's ``index.py``, the ``shared/`` package
(``.py`` files only) and the runtime dependencies that function imports, built for CPython 3.10
on ``manylinux2014_x86_64`` whatever the machine that packages them. The PostgreSQL driver
(psycopg with its bundled libpq, more than half of what a function zip would weigh) is built once,
as an FC layer: ``vodfc-postgres-layer.zip`` holds it under ``python/``, which FC unpacks into
``/opt`` and puts ``/opt/python`` on Python's module search path
(https://www.alibabacloud.com/help/en/functioncompute/fc-3-0/user-guide/create-a-custom-layer-1).
The layer holds only what no function zip has, and shares no file with them, so the order of the
two on the path never matters; a SQLite-only deployment attaches no layer (psycopg is imported
only for a ``postgresql://`` URL).

How the dependencies are chosen:

1. ``pip download`` fetches wheels for the union of all functions' requirements (specifiers from
   ``pyproject.toml``) for the target platform, from pip's usual cache (``~/.cache/pip``).
2. pip evaluates environment markers against the interpreter *running* pip, not the
   ``--python-version`` target (so on 3.11 it drops ``exceptiongroup; python_version < "3.11"``,
   which anyio needs on 3.10). We therefore walk each function's dependency closure ourselves,
   from the wheels' ``Requires-Dist`` with markers evaluated for the target, and download again
   whatever pip left out.
3. Each function's closure (and the layer's, less what every function has) is installed with
   ``pip install --no-deps --target``, then stripped (caches, type stubs, tests, docs, install
   bookkeeping) and zipped deterministically (sorted entries, fixed timestamps and modes), so the
   same inputs give byte-identical zips.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FUNCTION_DEPS",
    "LAYER_DEPS",
    "LAYER_NAME",
    "OPTIONAL_DEPS",
    "PackageInfo",
    "build_packages",
    "package",
    "project_requirements",
]

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("upload_credentials", "vod_callback", "cleanup")

# What each function imports (distribution names as spelled in pyproject.toml); only the
# credentials function checks JWTs. The PostgreSQL driver, which all three use in production, is
# the layer's (LAYER_DEPS).
FUNCTION_DEPS: dict[str, tuple[str, ...]] = {
    "upload_credentials": ("httpx", "pydantic", "PyJWT"),
    "vod_callback": ("httpx", "pydantic"),
    "cleanup": ("httpx", "pydantic"),
}
# The layer: its name in FC (``s layer publish --layer-name``) and zip, and what it holds.
LAYER_NAME = "vodfc-postgres"
LAYER_DEPS: tuple[str, ...] = ("psycopg[binary]",)
LAYER_ROOT = "python"  # FC's Python runtimes search /opt/python
# Optional extras (pyproject [project.optional-dependencies]) and the functions that take them;
# chosen with VODFC_PACKAGE_EXTRAS=jwt-asymmetric (RS256/ES256 JWTs need cryptography).
OPTIONAL_DEPS: dict[str, tuple[str, ...]] = {"jwt-asymmetric": ("upload_credentials",)}

PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = "3.10"
IMPLEMENTATION = "cp"
# The environment markers of FC's python3.10 runtime (Debian 10, x86_64).
TARGET_MARKERS: dict[str, str] = {
    "implementation_name": "cpython",
    "implementation_version": "3.10.13",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.10.13",
    "python_version": "3.10",
    "sys_platform": "linux",
}

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry
STRIP_DIRS = frozenset({"__pycache__", "tests", "docs"})
STRIP_SUFFIXES = (".pyc", ".pyo", ".pyi")
# pip's install bookkeeping: RECORD lists hashes of files we strip, the rest is about this host.
STRIP_DIST_INFO = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
MAX_ROUNDS = 5


@dataclass(frozen=True)
class PackageInfo:
    """One built zip: a function's, or the layer's (``function`` is then :data:`LAYER_NAME`)."""

    function: str
    path: Path
    size: int
    files: int
    distributions: tuple[str, ...]
    layer: bool = False


class PackagingError(RuntimeError):
    """The packages cannot be built (pip failed, a requirement is missing, a file collides)."""


# --- requirements ------------------------------------------------------------------------------
def _packaging() -> tuple[type, Callable[[str], str]]:
    """``packaging.requirements.Requirement`` and ``canonicalize_name`` (pip's copy as fallback)."""
    try:
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
    except ImportError:  # pragma: no cover - packaging comes with pytest; pip vendors it anyway
        from pip._vendor.packaging.requirements import Requirement  # type: ignore[assignment]
        from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[assignment]
    return Requirement, canonicalize_name


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """Requirement strings of pyproject.toml (runtime first, then optional), by canonical name."""
    text = pyproject.read_text(encoding="utf-8")
    runtime, optional = _read_dependencies(text)
    specs: dict[str, str] = {}
    for req in runtime + [r for reqs in optional.values() for r in reqs]:
        name = re.split(r"[\s\[<>=!~;]", req.strip(), maxsplit=1)[0]
        specs.setdefault(_canon(name), req.strip())
    return specs


def _optional_requirements(pyproject: Path, extra: str) -> list[str]:
    _, optional = _read_dependencies(pyproject.read_text(encoding="utf-8"))
    if extra not in optional:
        raise PackagingError(f"unknown extra {extra!r}; pyproject.toml has: {', '.join(sorted(optional))}")
    return optional[extra]


def _read_dependencies(text: str) -> tuple[list[str], dict[str, list[str]]]:
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]  # 3.11+
    except ModuleNotFoundError:  # Python 3.10: the two arrays we need are plain string lists
        return _read_dependencies_fallback(text)
    project = tomllib.loads(text)["project"]
    return list(project.get("dependencies", [])), {
        k: list(v) for k, v in project.get("optional-dependencies", {}).items()
    }


def _read_dependencies_fallback(text: str) -> tuple[list[str], dict[str, list[str]]]:
    def strings(block: str) -> list[str]:
        return re.findall(r'"([^"]+)"', re.sub(r"#[^\n]*", "", block))

    section = ""
    runtime: list[str] = []
    optional: dict[str, list[str]] = {}
    for match in re.finditer(r"^\[([^\]]+)\]|^([\w-]+)\s*=\s*\[(.*?)\]", text, re.M | re.S):
        if match.group(1):
            section = match.group(1).strip()
        elif section == "project" and match.group(2) == "dependencies":
            runtime = strings(match.group(3))
        elif section == "project.optional-dependencies":
            optional[match.group(2)] = strings(match.group(3))
    return runtime, optional


def function_requirements(
    extras: Iterable[str] = (), pyproject: Path = ROOT / "pyproject.toml"
) -> dict[str, list[str]]:
    """The requirement strings (with pyproject's specifiers) each function, and the layer
    (:data:`LAYER_NAME`), are built from."""
    specs = project_requirements(pyproject)
    result: dict[str, list[str]] = {}
    for function, names in {**FUNCTION_DEPS, LAYER_NAME: LAYER_DEPS}.items():
        reqs = []
        for name in names:
            key = _canon(re.split(r"\[", name, maxsplit=1)[0])
            if key not in specs:
                raise PackagingError(f"{name} (of {function}) is not a dependency in pyproject.toml")
            reqs.append(specs[key])
        result[function] = reqs
    for extra in extras:
        if extra not in OPTIONAL_DEPS:
            raise PackagingError(f"unknown extra {extra!r}; one of: {', '.join(sorted(OPTIONAL_DEPS))}")
        for function in OPTIONAL_DEPS[extra]:
            result[function].extend(_optional_requirements(pyproject, extra))
    return result


# --- wheels ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Wheel:
    name: str  # canonical
    version: str
    path: Path
    requires: tuple[str, ...]


def _wheel_metadata(path: Path) -> _Wheel:
    with zipfile.ZipFile(path) as zf:
        meta_name = next(n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        text = zf.read(meta_name).decode("utf-8")
    headers = text.split("\n\n", 1)[0]
    fields: dict[str, list[str]] = {}
    for line in headers.splitlines():
        if ":" in line and not line.startswith((" ", "\t")):
            key, _, value = line.partition(":")
            fields.setdefault(key.strip().lower(), []).append(value.strip())
    return _Wheel(
        name=_canon(fields["name"][0]),
        version=fields["version"][0],
        path=path,
        requires=tuple(fields.get("requires-dist", [])),
    )


def _pip(args: list[str], *, what: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise PackagingError(f"pip failed while {what} (exit {proc.returncode}):\n{tail}")


def _target_args() -> list[str]:
    return [
        "--platform", PLATFORM,
        "--python-version", PYTHON_VERSION,
        "--implementation", IMPLEMENTATION,
        "--only-binary=:all:",
        "--disable-pip-version-check",
    ]  # fmt: skip


def _download(requirements: list[str], dest: Path) -> dict[str, _Wheel]:
    dest.mkdir(parents=True)
    _pip(
        ["download", "--quiet", "--dest", str(dest), *_target_args(), *requirements],
        what="downloading wheels",
    )
    wheels: dict[str, _Wheel] = {}
    for path in sorted(dest.glob("*.whl")):
        wheel = _wheel_metadata(path)
        if wheel.name in wheels:
            raise PackagingError(f"two versions of {wheel.name} were downloaded")
        wheels[wheel.name] = wheel
    return wheels


def _closure(roots: list[str], wheels: Mapping[str, _Wheel]) -> tuple[set[str], list[str]]:
    """(distributions needed on the target, requirements missing from ``wheels``)."""
    requirement_cls, canonicalize = _packaging()
    needed: set[str] = set()
    missing: list[str] = []
    seen: set[tuple[str, frozenset[str]]] = set()
    stack = [requirement_cls(r) for r in roots]
    while stack:
        req = stack.pop()
        name = canonicalize(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        wheel = wheels.get(name)
        if wheel is None:
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            missing.append(f"{req.name}{extras}{req.specifier}")
            continue
        if req.specifier and not req.specifier.contains(wheel.version, prereleases=True):
            raise PackagingError(f"{wheel.name} {wheel.version} was downloaded but {req} is required")
        needed.add(name)
        for spec in wheel.requires:
            dep = requirement_cls(spec)
            wanted_extras = {""} | set(req.extras)
            markers = ({**TARGET_MARKERS, "extra": e} for e in wanted_extras)
            if dep.marker is None or any(dep.marker.evaluate(m) for m in markers):
                stack.append(requirement_cls(str(dep).split(";", 1)[0]))
    return needed, missing


def _resolve(
    per_function: Mapping[str, list[str]], workdir: Path
) -> tuple[dict[str, _Wheel], dict[str, set[str]]]:
    """Download until every function's closure (target markers) is present; return both."""
    requirements = sorted({r for reqs in per_function.values() for r in reqs})
    for round_no in range(1, MAX_ROUNDS + 1):
        wheels = _download(requirements, workdir / f"wheels-{round_no}")
        closures: dict[str, set[str]] = {}
        missing: set[str] = set()
        for function, roots in per_function.items():
            closures[function], lacking = _closure(roots, wheels)
            missing.update(lacking)
        if not missing:
            return wheels, closures
        requirements = sorted(set(requirements) | missing)
    raise PackagingError(f"dependency closure not complete after {MAX_ROUNDS} rounds: {sorted(missing)}")


# --- files -------------------------------------------------------------------------------------
def _install(wheels: Iterable[_Wheel], target: Path) -> None:
    paths = [str(w.path) for w in sorted(wheels, key=lambda w: w.name)]
    _pip(
        ["install", "--quiet", "--no-deps", "--no-index", "--no-compile", "--target", str(target),
         *_target_args(), *paths],
        what=f"installing into {target.name}",
    )  # fmt: skip


def strip_tree(tree: Path) -> None:
    """Drop what a deployed dependency tree never needs (the bench strips the SDK closures alike)."""
    shutil.rmtree(tree / "bin", ignore_errors=True)  # console scripts: of no use on FC
    for dirpath, dirnames, filenames in os.walk(tree):
        here = Path(dirpath)
        in_dist_info = here.name.endswith(".dist-info")
        for d in list(dirnames):
            if d in STRIP_DIRS and not in_dist_info:
                shutil.rmtree(here / d)
                dirnames.remove(d)
        for f in filenames:
            if f.endswith(STRIP_SUFFIXES) or (in_dist_info and f in STRIP_DIST_INFO):
                (here / f).unlink()
            elif in_dist_info and f == "METADATA":
                _trim_metadata(here / f)


def _trim_metadata(path: Path) -> None:
    """Keep METADATA's headers (name, version, requirements: what importlib.metadata reads) and
    drop the long description after them (the project's README, often larger than the code)."""
    text = path.read_text(encoding="utf-8")
    headers = text.split("\n\n", 1)[0]
    path.write_text(headers + "\n", encoding="utf-8")


def _tree_files(tree: Path) -> dict[str, Path]:
    return {p.relative_to(tree).as_posix(): p for p in tree.rglob("*") if p.is_file() and not p.is_symlink()}


def _source_files(function: str, root: Path) -> dict[str, Path]:
    """The function's own modules and ``shared/`` (``.py`` only, no caches)."""
    fn_dir = root / "functions" / function
    index = fn_dir / "index.py"
    if not index.is_file():
        raise PackagingError(f"{index.relative_to(root)} does not exist")
    files = {p.name: p for p in sorted(fn_dir.glob("*.py"))}
    shared = root / "shared"
    for path in sorted(shared.rglob("*.py")):
        rel = path.relative_to(root)
        if "__pycache__" not in rel.parts:
            files[rel.as_posix()] = path
    return files


def _write_zip(path: Path, files: Mapping[str, Path]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for arcname in sorted(files):
            src = files[arcname]
            info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
            info.create_system = 3  # Unix, so the mode below is honoured
            executable = os.stat(src).st_mode & 0o111
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, src.read_bytes(), compresslevel=6)
    os.replace(tmp, path)


# --- entry points ------------------------------------------------------------------------------
def build_packages(
    out: Path,
    *,
    functions: Iterable[str] = FUNCTIONS,
    extras: Iterable[str] = (),
    root: Path = ROOT,
    layer: bool = True,
    log: Callable[[str], None] = print,
) -> list[PackageInfo]:
    """Build ``<out>/<function>.zip`` for each function and, with ``layer``,
    ``<out>/vodfc-postgres-layer.zip``; return what was built (the functions, then the layer)."""
    functions = list(functions)
    unknown = [f for f in functions if f not in FUNCTION_DEPS]
    if unknown:
        raise PackagingError(f"unknown functions: {', '.join(unknown)}")
    out.mkdir(parents=True, exist_ok=True)
    # Every closure is resolved, whatever is built: what the layer leaves out depends on them all.
    per_function = function_requirements(extras, root / "pyproject.toml")
    with tempfile.TemporaryDirectory(prefix="vodfc-package-") as tmp:
        workdir = Path(tmp)
        wheels, closures = _resolve(per_function, workdir)
        contents = _split_layer(closures, FUNCTION_DEPS)
        jobs = [*functions, *([LAYER_NAME] if layer else [])]
        # pip installs and compression of the packages are independent: run them together.
        with ThreadPoolExecutor(max_workers=len(jobs) or 1) as pool:
            built = list(
                pool.map(
                    lambda name: _build_one(
                        name, [wheels[n] for n in sorted(contents[name])], out, workdir, root
                    ),
                    jobs,
                )
            )
    for info in built:
        log(
            f"{info.path}: {info.size:,} bytes ({info.size / 2**20:.2f} MiB), {info.files} files; "
            f"{', '.join(f'{wheels[n].name} {wheels[n].version}' for n in info.distributions)}"
        )
    return built


def find_python310() -> str | None:
    """An interpreter of FC's runtime version (pyenv's 3.10 here), to precompile bytecode with."""
    candidates = sorted(Path(os.path.expanduser("~/.pyenv/versions")).glob("3.10.*/bin/python3.10"))
    for candidate in [*map(str, reversed(candidates)), "/usr/bin/python3.10", "/usr/local/bin/python3.10"]:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _precompile(tree: Path, python: str) -> None:
    """Ship CPython 3.10 bytecode: FC's code directory is read-only, so without it every cold
    start compiles every module again (measured: 906 ms instead of 530 ms to a first answer).
    ``unchecked-hash`` pycs carry no timestamps (reproducible zips) and are used without stat-ing
    the source."""
    subprocess.run(
        # -s: file names inside the bytecode relative to the package, not this build's temp dir.
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(tree),
            str(tree),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        # Constant frozensets are marshalled in hash order: a fixed seed keeps zips reproducible.
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )


def _split_layer(closures: Mapping[str, set[str]], functions: Iterable[str]) -> dict[str, set[str]]:
    """What each zip holds: a function its own closure (it must run without the layer on SQLite);
    the layer its closure less what every function zip holds anyway (typing-extensions, which
    pydantic needs too). A distribution in the layer and in some function zips only would be on
    the path twice: refused, so that the layer and a function never share a file."""
    everywhere = set.intersection(*(closures[f] for f in FUNCTION_DEPS))
    layer = closures[LAYER_NAME] - everywhere
    contents = {f: set(closures[f]) for f in functions}
    shared = sorted(layer & set().union(*(closures[f] for f in FUNCTION_DEPS)))
    if shared:
        raise PackagingError(f"{shared} would be in the layer and in some function zips, not all")
    contents[LAYER_NAME] = layer
    return contents


def _build_layer(wheels: list[_Wheel], out: Path, workdir: Path) -> PackageInfo:
    tree = workdir / "site" / LAYER_NAME
    deps_dir = tree / LAYER_ROOT
    _install(wheels, deps_dir)
    strip_tree(deps_dir)
    python = None if os.environ.get("VODFC_PACKAGE_NO_PYC") else find_python310()
    if python is not None:
        _precompile(deps_dir, python)
    files = _tree_files(tree)
    path = out / f"{LAYER_NAME}-layer.zip"
    _write_zip(path, files)
    return PackageInfo(
        LAYER_NAME, path, path.stat().st_size, len(files), tuple(w.name for w in wheels), layer=True
    )


def _build_one(function: str, wheels: list[_Wheel], out: Path, workdir: Path, root: Path) -> PackageInfo:
    if function == LAYER_NAME:
        return _build_layer(wheels, out, workdir)
    deps_dir = workdir / "site" / function
    _install(wheels, deps_dir)
    strip_tree(deps_dir)
    files = _tree_files(deps_dir)
    sources = _source_files(function, root)
    clashes = sorted(n for n in files if n in sources or n.split("/", 1)[0] in {"shared", "index.py"})
    if clashes:
        raise PackagingError(f"dependencies of {function} collide with our code: {clashes[:5]}")
    python = None if os.environ.get("VODFC_PACKAGE_NO_PYC") else find_python310()
    if python is not None:
        for rel, src in sources.items():
            dest = deps_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        _precompile(deps_dir, python)
        files = _tree_files(deps_dir)
    else:
        files.update(sources)
    path = out / f"{function}.zip"
    _write_zip(path, files)
    return PackageInfo(function, path, path.stat().st_size, len(files), tuple(w.name for w in wheels))


def package(args: argparse.Namespace) -> int:
    """``vodfc package [--out dist]`` (extras: ``VODFC_PACKAGE_EXTRAS=jwt-asymmetric``)."""
    started = time.monotonic()
    extras = [e.strip() for e in os.environ.get("VODFC_PACKAGE_EXTRAS", "").split(",") if e.strip()]
    try:
        built = build_packages(Path(args.out), extras=extras)
    except PackagingError as exc:
        print(f"vodfc package: {exc}", file=sys.stderr)
        return 1
    print(f"built {len(built)} packages in {time.monotonic() - started:.1f} s")
    return 0
