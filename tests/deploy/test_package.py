"""The deployment zips, run the way FC runs them.

``vodfc package`` is built once per module into a temporary folder. Each zip is unpacked into an
empty folder and its handler (``Handler`` in template.yml) is imported and invoked in a fresh,
isolated CPython 3.10 (FC's ``python3.10``) whose ``sys.path`` is that folder plus the standard
library, with the function's environment from template.yml, against a stand-in VOD on loopback.
The PostgreSQL driver's layer is unpacked as FC mounts it (into an ``opt`` folder, whose
``python`` directory then joins ``sys.path`` after the code, as ``/opt/python`` does on FC) for
the runs that use PostgreSQL; the SQLite runs go without it. Every child run also reports any
module it loaded from outside those folders (there must be none).
"""

from __future__ import annotations

import base64
import contextlib
import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("upload_credentials", "vod_callback", "cleanup")
CALLBACK_URL = "https://uploads.example.com/callbacks/vod"
CALLBACK_KEY = "PackTestCallbackKey2026"
MARK = "@@vodfc-child-report@@"

# Top-level names each zip may hold (besides *.dist-info and *.libs); anything else is a leak.
COMMON = {
    "index.py", "shared",
    "httpx", "httpcore", "h11", "anyio", "sniffio", "idna", "certifi", "exceptiongroup",
    "pydantic", "pydantic_core", "annotated_types", "typing_inspection",
    "typing_extensions.py",
}  # fmt: skip
# What the layer holds under python/ (besides *.dist-info): the driver and its bundled libraries.
LAYER = {"psycopg", "psycopg_binary", "psycopg_binary.libs"}
ALLOWED = {
    "upload_credentials": COMMON | {"jwt"},
    "vod_callback": COMMON,
    "cleanup": COMMON,
}
FORBIDDEN = {
    "devkit", "tests", "bench", "functions", "waitress", "oss2", "yaml", "_yaml", "respx", "pytest",
    "hypothesis", "requests", "urllib3", "cryptography", "Tea", "darabonba", "pydantic_settings", "dotenv",
}  # fmt: skip
FORBIDDEN_PREFIXES = ("aliyunsdk", "alibabacloud")


def _under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _find_python310() -> str | None:
    candidates = [
        os.environ.get("VODFC_PYTHON310", ""),
        "/root/.pyenv/versions/3.10.13/bin/python3.10",
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10")), reverse=True),
        shutil.which("python3.10") or "",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            probe = subprocess.run(
                [candidate, "-I", "-S", "-c", "import sys; print(sys.version_info[:2] == (3, 10))"],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.stdout.strip() == "True":
                return candidate
    return None


# --- the stand-in VOD ---------------------------------------------------------------------------
@dataclass
class FakeVod:
    """Answers the VOD OpenAPI actions vodfc calls with VOD-shaped JSON (no signature check)."""

    videos: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answer(self, action: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4()).upper()
        if action in ("CreateUploadVideo", "RefreshUploadVideo"):
            if action == "CreateUploadVideo":
                video_id = uuid.uuid4().hex
                self.videos[video_id] = {
                    "VideoId": video_id,
                    "Title": params.get("Title"),
                    "Status": "Uploading",
                    "ReferenceId": params.get("ReferenceId"),
                    "UserData": params.get("UserData"),
                }
            else:
                video_id = params.get("VideoId", "")
                if video_id not in self.videos:
                    return 404, _vod_error(request_id, "InvalidVideo.NotFound", "The video does not exist.")
            return 200, {"RequestId": request_id, "VideoId": video_id, **_upload_credentials(video_id)}
        if action == "GetVideoInfo":
            video = self.videos.get(params.get("VideoId", ""))
            if video is None:
                return 404, _vod_error(request_id, "InvalidVideo.NotFound", "The video does not exist.")
            return 200, {"RequestId": request_id, "Video": video}
        if action == "GetVideoInfos":
            ids = [i for i in params.get("VideoIds", "").split(",") if i]
            refs = [r for r in params.get("ReferenceIds", "").split(",") if r]
            found = [v for v in self.videos.values() if v["VideoId"] in ids or v.get("ReferenceId") in refs]
            missing = [i for i in ids if i not in self.videos]
            return 200, {"RequestId": request_id, "VideoList": found, "NonExistVideoIds": missing}
        if action == "DeleteVideo":
            for video_id in params.get("VideoIds", "").split(","):
                self.videos.pop(video_id, None)
            return 200, {"RequestId": request_id}
        if action == "CreateUploadImage":
            image_id = uuid.uuid4().hex
            url = f"https://outin-packtest.oss-cn-shanghai.aliyuncs.com/image/cover/{image_id}.jpg"
            credentials = _upload_credentials(image_id)
            return 200, {
                "RequestId": request_id,
                "ImageId": image_id,
                "ImageURL": url,
                "FileURL": url,
                **credentials,
            }
        return 400, _vod_error(request_id, "InvalidAction.NotFound", f"Unknown action {action}.")

    def actions(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.calls if c["action"] == name]


def _vod_error(request_id: str, code: str, message: str) -> dict[str, Any]:
    return {
        "RequestId": request_id,
        "Code": code,
        "Message": message,
        "HostId": "vod.cn-shanghai.aliyuncs.com",
    }


def _b64json(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


def _upload_credentials(video_id: str) -> dict[str, str]:
    expires = (datetime.now(timezone.utc) + timedelta(seconds=3000)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "UploadAddress": _b64json(
            {
                "Endpoint": "https://oss-cn-shanghai.aliyuncs.com",
                "Bucket": "outin-packtest",
                "FileName": f"sv/{video_id[:8]}/{video_id}.mp4",
            }
        ),
        "UploadAuth": _b64json(
            {
                "SecurityToken": "CAIS-stub-security-token",
                "AccessKeyId": "STS.stubaccesskeyid",
                "ExpireUTCTime": expires,
                "AccessKeySecret": "stub-access-key-secret",
                "Expiration": "3000",
                "Region": "cn-shanghai",
            }
        ),
    }


def _handler_class(vod: FakeVod) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            split = urlsplit(self.path)
            params = dict(parse_qsl(split.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if body and "form-urlencoded" in (self.headers.get("Content-Type") or ""):
                params.update(parse_qsl(body.decode(), keep_blank_values=True))
            action = self.headers.get("x-acs-action") or params.get("Action", "")
            with vod.lock:
                vod.calls.append(
                    {
                        "action": action,
                        "params": params,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                    }
                )
                status, answer = vod.answer(action, params)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler


@pytest.fixture(scope="module")
def vod() -> Iterator[FakeVod]:
    fake = FakeVod()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-vod", daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- building and unpacking ---------------------------------------------------------------------
@dataclass(frozen=True)
class Built:
    out: Path
    zips: dict[str, Path]
    dirs: dict[str, Path]
    output: str
    digests: dict[str, str | None]  # the sources as packaged (None: they changed during the build)
    layer_zip: Path
    layer_dir: Path  # the unpacked layer's python/ (FC: /opt/python)


def _sources_digest(function: str) -> str:
    digest = hashlib.sha256()
    paths = [ROOT / "pyproject.toml", *sorted((ROOT / "functions" / function).glob("*.py"))]
    paths += sorted(p for p in (ROOT / "shared").rglob("*.py") if "__pycache__" not in p.parts)
    for path in paths:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """``vodfc package --out <tmp>`` (through the CLI), then each zip unpacked into an empty folder."""
    from devkit.cli import main

    out = tmp_path_factory.mktemp("dist")
    before = {fn: _sources_digest(fn) for fn in FUNCTIONS}
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rc = main(["package", "--out", str(out)])
    assert rc == 0, buffer.getvalue()
    zips = {fn: out / f"{fn}.zip" for fn in FUNCTIONS}
    dirs = {}
    for fn, path in zips.items():
        assert path.is_file(), f"{path} was not built"
        target = tmp_path_factory.mktemp(f"unzipped-{fn}")
        assert not any(target.iterdir())
        with zipfile.ZipFile(path) as zf:
            zf.extractall(target)
        dirs[fn] = target
    digests = {fn: d if d == _sources_digest(fn) else None for fn, d in before.items()}
    layer_zip = out / "vodfc-postgres-layer.zip"
    assert layer_zip.is_file(), f"{layer_zip} was not built"
    opt = tmp_path_factory.mktemp("opt")
    with zipfile.ZipFile(layer_zip) as zf:
        zf.extractall(opt)
    return Built(
        out=out,
        zips=zips,
        dirs=dirs,
        output=buffer.getvalue(),
        digests=digests,
        layer_zip=layer_zip,
        layer_dir=opt / "python",
    )


@pytest.fixture(scope="module")
def python310() -> str:
    found = _find_python310()
    if found is None:
        message = "no CPython 3.10 interpreter (FC's python3.10) found; set VODFC_PYTHON310"
        if _under_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "template.yml").read_text(encoding="utf-8"))
    return data


def _service(template: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in template["Resources"].values() if r.get("Type") == "Aliyun::Serverless::Service")


# --- the child interpreter ----------------------------------------------------------------------
CHILD = r"""
import io, json, os, sys, traceback
from types import SimpleNamespace

pkg, layer, spec_path = sys.argv[1], sys.argv[2], sys.argv[3]
stdlib = list(sys.path)                      # -I -S: the standard library only
sys.path[:] = [pkg] + ([layer] if layer else []) + stdlib   # FC: /code, then /opt/python
spec = json.load(open(spec_path, encoding="utf-8"))
MARK = spec["mark"]

def report(**data):
    mine = [os.path.realpath(p) for p in (pkg, layer) if p]
    roots = [os.path.realpath(p) for p in stdlib]
    outside, from_pkg = [], set()
    for name, module in sorted(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or name == "__main__":  # this script
            continue
        real = os.path.realpath(path)
        top = next((m for m in mine if real.startswith(m + os.sep)), None)
        if top is not None:
            from_pkg.add(os.path.relpath(real, top).split(os.sep)[0])
        elif "site-packages" in real or not any(real.startswith(r + os.sep) or real == r for r in roots):
            outside.append(f"{name}: {real}")
    data.update(outside=outside, from_pkg=sorted(from_pkg), sys_path=sys.path,
                isolated=sys.flags.isolated, no_site=sys.flags.no_site, version=list(sys.version_info[:3]))
    sys.stdout.flush()
    print(MARK + json.dumps(data, default=str), flush=True)

ctx = SimpleNamespace(
    request_id=spec.get("request_id", "c0ffee00-0000-4000-8000-000000000001"),
    credentials=SimpleNamespace(access_key_id="STS.contextkey", access_key_secret="context-secret",
                                security_token="context-token"),
    function=SimpleNamespace(name=spec["function"], handler=spec["handler"], memory=256, timeout=20),
    service=SimpleNamespace(name="vodfc", log_project="", log_store="", qualifier="LATEST", version_id=""),
    region="cn-shanghai", account_id="1234567890123456",
)
try:
    mode = spec["mode"]
    if mode == "migrate":
        from shared.store import open_store
        open_store(os.environ["DATABASE_URL"]).migrate()
        report(result="migrated")
    elif mode == "probe":
        import importlib
        out = {}
        for name in spec["modules"]:
            module = importlib.import_module(name)
            out[name] = getattr(module, "__file__", None)
        import psycopg
        out["psycopg_impl"] = psycopg.pq.__impl__
        report(result=out)
    else:
        module_name, func_name = spec["handler"].rsplit(".", 1)
        import importlib
        handler = getattr(importlib.import_module(module_name), func_name)
        if mode == "event":
            result = handler(json.dumps(spec["event"]).encode("utf-8"), ctx)
            if isinstance(result, (bytes, bytearray)):
                result = result.decode("utf-8")
            report(result=result)
        elif mode == "wsgi":
            req = spec["request"]
            body = req.get("body", "").encode("utf-8")
            environ = {
                "REQUEST_METHOD": req["method"], "PATH_INFO": req["path"],
                "QUERY_STRING": req.get("query", ""),
                "SERVER_NAME": "uploads.example.com", "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1",
                "REMOTE_ADDR": "203.0.113.10", "CONTENT_LENGTH": str(len(body)),
                "wsgi.version": (1, 0), "wsgi.url_scheme": "https", "wsgi.input": io.BytesIO(body),
                "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
                "wsgi.run_once": False, "fc.context": ctx, "fc.request_uri": req["request_uri"],
            }
            for key, value in req.get("headers", {}).items():
                name = key.upper().replace("-", "_")
                if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                    environ[name] = value
                else:
                    environ["HTTP_" + name] = value
            started = {}
            def start_response(status, headers, exc_info=None):
                started["status"], started["headers"] = status, headers
                return lambda data: None
            chunks = handler(environ, start_response)
            data = b"".join(chunks)
            if hasattr(chunks, "close"):
                chunks.close()
            report(result={"status": started.get("status"), "headers": started.get("headers"),
                           "body": data.decode("utf-8")})
        else:
            raise SystemExit(f"unknown mode {mode}")
except BaseException:
    traceback.print_exc()
    report(error=traceback.format_exc())
"""


@dataclass
class ChildRun:
    report: dict[str, Any]
    stdout_lines: list[str]
    stderr: str

    @property
    def result(self) -> Any:
        assert "error" not in self.report, self.report["error"] + "\n" + self.stderr
        return self.report["result"]

    def http(self) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) of an FC 3.0 HTTP answer (dict, or a JSON string of one)."""
        answer = self.result
        if isinstance(answer, str):
            answer = json.loads(answer)
        assert isinstance(answer, dict) and "statusCode" in answer, answer
        body = answer.get("body") or ""
        if answer.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8")
        status = int(answer["statusCode"])
        assert status < 500, f"HTTP {status} {body}; the function logged:\n" + "\n".join(self.stdout_lines)
        return status, json.loads(body) if body else {}


@dataclass
class Runner:
    python: str
    built: Built
    template: dict[str, Any]
    vod: FakeVod
    workdir: Path
    database_url: str
    counter: int = 0

    def env(self, function: str, **overrides: str) -> dict[str, str]:
        """The function's environment from template.yml, with test values for the parameters."""
        props = _service(self.template)[function]["Properties"]
        params = {
            "DatabaseUrl": self.database_url,
            "JwtSecret": "pack-test-jwt-secret-0123456789abcdef",
            "CallbackUrl": CALLBACK_URL,
            "CallbackAuthKey": CALLBACK_KEY,
            "CallbackAuthKeyPrevious": "",
            "AllowedOrigins": "https://app.example.com",
            "WebhookUrl": "",  # notifications off: the template's default
            "WebhookSecret": "",
            "WebhookSecretPrevious": "",
            "WebhookEvents": "",
            "WebhookDelivery": "immediate",
        }
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        for name, value in (props.get("EnvironmentVariables") or {}).items():
            env[name] = params[value["Ref"]] if isinstance(value, dict) else str(value)
        env.update(
            {
                "VOD_ENDPOINT": self.vod.url,
                "DATABASE_URL": self.database_url,
                "AUTH_MODE": "none",
                "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-pack-test",
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "pack-test-secret",
                "VOD_MAX_ATTEMPTS": "1",
            }
        )
        env.update(overrides)
        return env

    def run(
        self,
        function: str,
        mode: str,
        timeout: float = 60,
        env: dict[str, str] | None = None,
        layer: bool = False,
        **spec: Any,
    ) -> ChildRun:
        """Run ``function`` in a fresh interpreter; ``layer``: with the PostgreSQL driver's layer."""
        self.counter += 1
        handler = _service(self.template)[function]["Properties"]["Handler"]
        spec_path = self.workdir / f"spec-{self.counter}.json"
        spec_path.write_text(
            json.dumps({"mark": MARK, "function": function, "handler": handler, "mode": mode, **spec}),
            encoding="utf-8",
        )
        child = self.workdir / "child.py"
        if not child.exists():
            child.write_text(CHILD, encoding="utf-8")
        layer_dir = str(self.built.layer_dir) if layer else ""
        proc = subprocess.run(
            [self.python, "-I", "-S", str(child), str(self.built.dirs[function]), layer_dir, str(spec_path)],
            capture_output=True,
            text=True,
            env=env if env is not None else self.env(function),
            cwd=self.workdir,
            timeout=timeout,
            check=False,
        )
        lines = proc.stdout.splitlines()
        reports = [line[len(MARK) :] for line in lines if line.startswith(MARK)]
        assert reports, f"child gave no report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        report = json.loads(reports[-1])
        assert report["outside"] == [], f"modules loaded from outside the package: {report['outside']}"
        assert report["sys_path"][0] == str(self.built.dirs[function])
        assert report["isolated"] == 1 and report["no_site"] == 1
        assert report["version"][:2] == [3, 10]
        return ChildRun(report, [line for line in lines if not line.startswith(MARK)], proc.stderr)


@pytest.fixture(scope="module")
def runner(
    python310: str,
    built: Built,
    template: dict[str, Any],
    vod: FakeVod,
    tmp_path_factory: pytest.TempPathFactory,
) -> Runner:
    workdir = tmp_path_factory.mktemp("fc-runtime")
    return Runner(python310, built, template, vod, workdir, f"sqlite:///{workdir / 'db.sqlite'}")


def _event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "events" / name).read_text(encoding="utf-8"))
    return data


def _signed_callback(
    video_id: str, extend: dict[str, Any] | None, *, key: str = CALLBACK_KEY
) -> dict[str, Any]:
    event = _event("http/vod_callback.json")
    body = json.loads(event["body"])
    body["VideoId"] = video_id
    if extend is not None:
        body["Extend"] = json.dumps(extend, separators=(",", ":"))
    event["body"] = json.dumps(body)
    ts = str(int(time.time()))
    signature = hashlib.md5(f"{CALLBACK_URL}|{ts}|{key}".encode()).hexdigest()
    headers = {k: v for k, v in event["headers"].items() if not k.lower().startswith("x-vod-")}
    event["headers"] = {**headers, "X-VOD-TIMESTAMP": ts, "X-VOD-SIGNATURE": signature}
    return event


@dataclass(frozen=True)
class Created:
    video_id: str
    answer: dict[str, Any]
    extend: dict[str, Any]


def _create(runner: Runner) -> Created:
    event = _event("http/create_upload.json")
    event["headers"]["Idempotency-Key"] = str(uuid.uuid4())
    status, answer = runner.run("upload_credentials", "event", event=event).http()
    assert status == 200, answer
    video_id = answer["VideoId"]
    sent = [
        c
        for c in runner.vod.actions("CreateUploadVideo")
        if runner.vod.videos.get(video_id, {}).get("ReferenceId") == c["params"].get("ReferenceId")
    ]
    assert len(sent) == 1
    extend = json.loads(sent[0]["params"]["UserData"])["Extend"]
    return Created(video_id, answer, extend)


@pytest.fixture(scope="module")
def created(runner: Runner) -> Created:
    """One upload created through the packaged credentials function (FC 3.0 HTTP event)."""
    return _create(runner)


# --- the zips themselves ------------------------------------------------------------------------
def test_cli_reports_size_and_file_count(built: Built) -> None:
    for fn, path in built.zips.items():
        line = next((line for line in built.output.splitlines() if f"{fn}.zip" in line), "")
        size = path.stat().st_size
        assert f"{size:,} bytes" in line and "MiB" in line and "files" in line, built.output


@pytest.mark.parametrize("function", FUNCTIONS)
def test_zip_layout(built: Built, function: str) -> None:
    with zipfile.ZipFile(built.zips[function]) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names), "entries are not sorted"
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert "index.py" in names and "shared/__init__.py" in names
    assert (ROOT / "functions" / function / "index.py").read_bytes() == (
        built.dirs[function] / "index.py"
    ).read_bytes()
    assert {n for n in names if n.startswith("shared/") and n.endswith(".py")} == {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "shared").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    # Bytecode only as CPython 3.10 pycs in __pycache__, one per module (FC's read-only code dir
    # could never cache them itself), never the developer's own caches.
    sources = {n for n in names if n.endswith(".py")}
    pycs = [n for n in names if n.endswith((".pyc", ".pyo"))]
    assert pycs and all(n.endswith(".cpython-310.pyc") and "/__pycache__/" in f"/{n}" for n in pycs)
    assert {n.replace("__pycache__/", "").replace(".cpython-310.pyc", ".py") for n in pycs} <= sources
    assert "shared/__pycache__/http.cpython-310.pyc" in pycs and "__pycache__/index.cpython-310.pyc" in pycs
    assert not [n for n in names if n.endswith(".dist-info/RECORD") or n.endswith(".dist-info/INSTALLER")]
    tops = {n.split("/", 1)[0] for n in names}
    code = {t for t in tops if not t.endswith((".dist-info", ".libs")) and t != "__pycache__"}
    assert code <= ALLOWED[function], f"unexpected in {function}.zip: {sorted(code - ALLOWED[function])}"
    assert not code & FORBIDDEN
    assert not [t for t in code if t.lower().startswith(FORBIDDEN_PREFIXES)]
    if function != "upload_credentials":
        assert "jwt" not in code, "only the credentials function checks JWTs"
    for required in ("httpx", "pydantic", "pydantic_core"):
        assert required in code, f"{required} missing from {function}.zip"
    assert not code & LAYER, "the PostgreSQL driver is the layer's, not the function's"
    # pydantic-core is a compiled extension: it must be the CPython 3.10 / x86_64 Linux build.
    assert [n for n in names if n.startswith("pydantic_core/_pydantic_core.cpython-310-x86_64-linux-gnu")]


def test_layer_layout(built: Built) -> None:
    """Everything under python/ (FC: /opt/python), the driver only, no file of any function zip."""
    with zipfile.ZipFile(built.layer_zip) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names) and {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {n.split("/", 1)[0] for n in names} == {"python"}
    tops = {n.split("/")[1] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == LAYER
    assert [n for n in names if n.startswith("python/psycopg_binary/pq.cpython-310-x86_64-linux-gnu")]
    pycs = [n for n in names if n.endswith(".pyc")]
    assert pycs and all(n.endswith(".cpython-310.pyc") for n in pycs)
    inside = {n.removeprefix("python/") for n in names}
    for function, path in built.zips.items():
        with zipfile.ZipFile(path) as zf:
            shared = inside & set(zf.namelist())
        assert not shared, f"{function}.zip and the layer both hold {sorted(shared)[:5]}"


def test_build_is_deterministic(built: Built, tmp_path: Path) -> None:
    """Same sources, same bytes: a second build of one function and of the layer equals the first."""
    from devkit.package import build_packages

    again, layer = build_packages(tmp_path, functions=["cleanup"], log=lambda _: None)
    if _sources_digest("cleanup") != built.digests["cleanup"]:
        pytest.skip("the work tree changed while the tests ran")
    assert again.path.read_bytes() == built.zips["cleanup"].read_bytes()
    assert layer.layer and layer.path.read_bytes() == built.layer_zip.read_bytes()


# --- FC 3.0: handler(event, context) ------------------------------------------------------------
def test_dependencies_import_on_python310(runner: Runner) -> None:
    modules = ["httpx", "pydantic", "pydantic_core", "psycopg", "jwt"]
    run = runner.run("upload_credentials", "probe", modules=modules, layer=True)
    assert run.result["psycopg_impl"] == "binary"
    assert run.result["psycopg"].startswith(str(runner.built.layer_dir))
    for name in ("httpx", "pydantic", "pydantic_core", "jwt"):
        assert run.result[name].startswith(str(runner.built.dirs["upload_credentials"]))


def test_without_the_layer_postgres_is_a_clear_503(runner: Runner) -> None:
    """A PostgreSQL URL and no layer attached: 503 MissingDatabaseDriver, the cause logged."""
    env = runner.env("upload_credentials", DATABASE_URL="postgresql://vodfc:pw-not-logged@127.0.0.1:1/vodfc")
    event = _event("http/create_upload.json")
    event["headers"]["Idempotency-Key"] = str(uuid.uuid4())
    run = runner.run("upload_credentials", "event", event=event, env=env)
    answer = json.loads(run.result) if isinstance(run.result, str) else run.result
    body = json.loads(answer["body"])
    assert (answer["statusCode"], body["Code"]) == (503, "MissingDatabaseDriver")
    logged = "\n".join(run.stdout_lines)
    assert "No module named 'psycopg'" in logged and "pw-not-logged" not in logged + run.stderr
    assert "psycopg" not in run.report["from_pkg"]


def test_create_answers_credentials(runner: Runner, created: Created) -> None:
    answer = created.answer
    assert answer["VideoId"] in runner.vod.videos
    assert answer["UploadAddress"] and answer["UploadAuth"]
    assert json.loads(base64.b64decode(answer["UploadAddress"]))["Bucket"] == "outin-packtest"
    call = runner.vod.actions("CreateUploadVideo")[0]
    assert call["headers"]["authorization"].startswith("ACS3-HMAC-SHA256 Credential=LTAI-pack-test")
    assert json.loads(call["params"]["UserData"])["MessageCallback"]["CallbackURL"] == CALLBACK_URL


def test_image_create_answers_in_vods_names(runner: Runner) -> None:
    event = _event("http/create_image.json")
    status, answer = runner.run("upload_credentials", "event", event=event).http()
    assert status == 200, answer
    assert {"ImageId", "ImageURL", "FileURL", "UploadAddress", "UploadAuth"} <= set(answer)
    call = runner.vod.actions("CreateUploadImage")[0]
    assert (call["params"]["ImageType"], call["params"]["ImageExt"]) == ("cover", "jpg")


def test_signed_callback_is_accepted(runner: Runner, created: Created) -> None:
    runner.vod.videos[created.video_id]["Status"] = "UploadSucc"  # the file arrived (VOD confirms it)
    event = _signed_callback(created.video_id, created.extend)
    status, answer = runner.run("vod_callback", "event", event=event).http()
    assert status == 200, answer
    assert answer["VideoId"] == created.video_id

    get = _event("http/get_upload.json")
    get["rawPath"] = get["requestContext"]["http"]["path"] = f"/uploads/{created.video_id}"
    status, view = runner.run("upload_credentials", "event", event=get).http()
    assert (status, view["Status"]) == (200, "uploaded")


def test_badly_signed_callback_is_rejected(runner: Runner, created: Created) -> None:
    event = _signed_callback(created.video_id, created.extend, key="NotTheCallbackKey123")
    status, answer = runner.run("vod_callback", "event", event=event).http()
    assert status == 401, answer
    assert CALLBACK_KEY not in json.dumps(answer)


def _summaries(value: Any) -> Iterator[dict[str, Any]]:
    """Every object in a JSON log line that looks like the cleanup summary (wherever it sits)."""
    if isinstance(value, dict):
        if {"scanned", "deleted", "errors"} <= value.keys():
            yield value
        for item in value.values():
            yield from _summaries(item)


def test_cleanup_prints_its_summary(runner: Runner, created: Created) -> None:
    run = runner.run("cleanup", "event", event=_event("timer/cleanup.json"))
    printed = [s for line in run.stdout_lines if line.startswith("{") for s in _summaries(json.loads(line))]
    assert printed, f"no JSON summary on stdout: {run.stdout_lines}"
    assert printed[-1]["errors"] == 0
    assert json.loads(run.result)["errors"] == 0


# --- FC 2.0: handler(environ, start_response) ---------------------------------------------------
def test_wsgi_create(runner: Runner) -> None:
    event = _event("http/create_upload.json")
    request = {
        "method": "POST",
        "path": "/uploads",
        "request_uri": "/2016-08-15/proxy/vodfc/upload_credentials/uploads",
        "headers": {**event["headers"], "Idempotency-Key": str(uuid.uuid4())},
        "body": event["body"],
    }
    result = runner.run("upload_credentials", "wsgi", request=request).result
    assert result["status"].startswith("200"), result
    answer = json.loads(result["body"])
    assert answer["VideoId"] in runner.vod.videos and answer["UploadAuth"]
    assert any(k.lower() == "content-type" and "json" in v for k, v in result["headers"])


def test_wsgi_callback(runner: Runner, created: Created) -> None:
    event = _signed_callback(created.video_id, created.extend)
    request = {
        "method": "POST",
        "path": "/callbacks/vod",
        "request_uri": "/callbacks/vod",  # through the custom domain
        "headers": event["headers"],
        "body": event["body"],
    }
    result = runner.run("vod_callback", "wsgi", request=request).result
    assert result["status"].startswith("200"), result


# --- production store -----------------------------------------------------------------------------
@pytest.mark.postgres
def test_postgres_store_from_the_package(runner: Runner, postgres_url: str) -> None:
    """The layer's psycopg (binary, cp310) drives the production store: migrate, create, callback,
    cleanup, each function unpacked with the layer beside it as FC mounts them."""
    env = runner.env("upload_credentials", DATABASE_URL=postgres_url)
    assert runner.run("upload_credentials", "migrate", env=env, layer=True).result == "migrated"
    event = _event("http/create_upload.json")
    event["headers"]["Idempotency-Key"] = str(uuid.uuid4())
    created = runner.run("upload_credentials", "event", event=event, env=env, layer=True)
    status, answer = created.http()
    assert status == 200, answer
    assert {"psycopg", "psycopg_binary"} <= set(created.report["from_pkg"])  # ... from the layer
    video_id = answer["VideoId"]
    sent = next(
        c
        for c in runner.vod.actions("CreateUploadVideo")
        if runner.vod.videos.get(video_id, {}).get("ReferenceId") == c["params"].get("ReferenceId")
    )
    runner.vod.videos[video_id]["Status"] = "UploadSucc"
    callback = _signed_callback(video_id, json.loads(sent["params"]["UserData"])["Extend"])
    status, answer = runner.run(
        "vod_callback", "event", event=callback, env=runner.env("vod_callback", DATABASE_URL=postgres_url),
        layer=True,
    ).http()  # fmt: skip
    assert status == 200, answer
    run = runner.run(
        "cleanup",
        "event",
        event=_event("timer/cleanup.json"),
        env=runner.env("cleanup", DATABASE_URL=postgres_url),
        layer=True,
    )
    assert json.loads(run.result)["errors"] == 0
