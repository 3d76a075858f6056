"""Section 2, package size; also lays out the ``package`` runtime (unzipped packages, .pyc compiled)."""

from __future__ import annotations

import shutil
import sys
from typing import Any

from bench.core import Bench
from bench.packages import (
    FUNCTIONS,
    LAYER,
    SDKS,
    build_sdk,
    build_vodfc,
    compile_tree,
    python_for_packages,
    unpack,
)
from bench.runtime import Runtime
from bench.stats import ratio

__all__ = ["run"]

NOPYC = ("upload_credentials", "sdk-current", "sdk-legacy")


def run(bench: Bench) -> dict[str, Any]:
    py310 = python_for_packages()
    pip_python = py310 or sys.executable
    want_package_runtime = bench.opts.runtime in ("auto", "package") and py310 is not None
    if bench.opts.runtime == "package" and py310 is None:
        raise SystemExit("--runtime package needs a CPython 3.10 (set BENCH_PYTHON310)")
    build = bench.tmp / "build"
    bench.log("building vodfc packages (vodfc package) ...")
    vodfc = build_vodfc(build / "dist", log=bench.log)
    packages = {p.name: p for p in vodfc}
    trees = {}
    for sdk in SDKS:
        bench.log(f"building {sdk} dependency closure (pip --target, cp310 manylinux2014) ...")
        pkg, tree = build_sdk(sdk, build / "sdk", pip_python=pip_python)
        packages[sdk] = pkg
        trees[sdk] = tree

    if want_package_runtime:
        assert py310 is not None
        bench.log(f"package runtime: {py310} -I on the unzipped packages; compiling .pyc ...")
        code, nopyc = {}, {}
        for function in FUNCTIONS:
            code[function] = unpack(packages[function].zip_path, bench.tmp / "code" / function)
        # FC unpacks a layer into /opt and searches /opt/python: the PostgreSQL runs get it.
        opt = unpack(packages[LAYER].zip_path, bench.tmp / "code" / "opt")
        code[LAYER] = opt / "python"
        for sdk, tree in trees.items():
            code[sdk] = tree
        for name in NOPYC:
            copy = bench.tmp / "code-nopyc" / name
            shutil.copytree(code[name], copy)
            nopyc[name] = copy
        for tree in code.values():
            compile_tree(py310, tree)
        bench.runtime = Runtime("package", py310, ("-I",), code, nopyc)
    else:
        bench.log(f"venv runtime: {sys.executable}")
        bench.runtime = Runtime.venv()

    cur = packages["sdk-current"].zip_bytes
    leg = packages["sdk-legacy"].zip_bytes
    largest = max(packages[f].zip_bytes for f in FUNCTIONS)
    ratios = {}
    for function in FUNCTIONS:
        ratios[f"{function}_vs_current"] = ratio(packages[function].zip_bytes, cur)
        ratios[f"{function}_vs_legacy"] = ratio(packages[function].zip_bytes, leg)
    # The layer is deployed once and shared by the three functions; it is reported beside them,
    # not added to each (the SDK closures carry no database driver at all).
    ratios["layer_vs_current"] = ratio(packages[LAYER].zip_bytes, cur)
    result = {
        "packages": {name: p.to_dict() for name, p in packages.items()},
        "layer": LAYER,
        "ratios": ratios,
        "goals": {
            "every_function_le_0.5_current": (ratio(largest, cur) or 99) <= 0.5,
            "every_function_le_1.0_legacy": (ratio(largest, leg) or 99) <= 1.0,
        },
        "pip_python": pip_python,
    }
    return result
