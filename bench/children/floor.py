"""Child process: the floor of a cold first call on vodfc's stack, written as plainly as it gets.

``python floor.py <credentials|callback|cleanup> <events-file>``: import pydantic and httpx,
validate one small model of the event's body, sign (ACS3-HMAC-SHA256) and send the same first
VOD call(s) the function makes (CreateUploadVideo; the callback's md5 signature check, then
GetVideoInfo; GetVideoInfos + DeleteVideo over 20 ids), read the JSON answer. With a PostgreSQL
``DATABASE_URL`` it also imports psycopg and opens one connection (what any PostgreSQL-backed
function pays); with SQLite it does nothing more. No JWT, no policy, no record, no logging: what
is left is what the stack itself costs. Trust: httpx's default (``SSL_CERT_DIR`` /
``SSL_CERT_FILE``, else certifi), the same store the vodfc children get. Prints ``BENCH {json}``
as soon as the last answer is in, like ``vodfc.py cold``. ``BENCH_CODE_DIR`` / ``BENCH_LAYER_DIR``
as for ``vodfc.py``.
"""

import time

T0 = time.perf_counter()

import os  # noqa: E402
import sys  # noqa: E402


def _signed(action, params, host, now, nonce):
    import hashlib
    import hmac
    from urllib.parse import quote

    def enc(text):
        return quote(text, safe="-_.~")

    query = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    empty = hashlib.sha256(b"").hexdigest()
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-content-sha256": empty,
        "x-acs-date": now,
        "x-acs-signature-nonce": nonce,
        "x-acs-version": "2017-03-21",
    }
    names = ";".join(sorted(headers))
    canonical = "\n".join(
        ["POST", "/", query, *(f"{k}:{headers[k]}" for k in sorted(headers)), "", names, empty]
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(b"floor-secret-not-real", to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"ACS3-HMAC-SHA256 Credential=STS.floor,SignedHeaders={names},Signature={signature}"
    )
    return query, headers


def main():
    mode, events_file = sys.argv[1], sys.argv[2]
    code_dir, layer_dir = os.environ.get("BENCH_CODE_DIR"), os.environ.get("BENCH_LAYER_DIR")
    if code_dir:
        sys.path.insert(0, code_dir)
    if layer_dir:
        sys.path.insert(1 if code_dir else 0, layer_dir)
    import json
    import uuid
    from datetime import datetime, timezone

    import httpx
    from pydantic import BaseModel, Field

    t_import = time.perf_counter()
    with open(events_file, "rb") as fh:
        event = json.loads(fh.readline())
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith("postgres"):
        import psycopg

        psycopg.connect(database_url, autocommit=True, connect_timeout=5).close()

    if mode == "credentials":

        class Create(BaseModel):
            Title: str = Field(min_length=1, max_length=128)
            FileName: str = Field(min_length=1, max_length=128)
            FileSize: int | None = Field(default=None, ge=0)

        body = Create.model_validate_json(event["body"])
        calls = [("CreateUploadVideo", {"Title": body.Title, "FileName": body.FileName,
                                        "FileSize": str(body.FileSize or 0)})]  # fmt: skip
    elif mode == "callback":
        import hashlib
        import hmac

        headers = {k.lower(): v for k, v in event["headers"].items()}
        stamp = headers["x-vod-timestamp"]
        expected = hashlib.md5(
            f"{os.environ['CALLBACK_URL']}|{stamp}|{os.environ['CALLBACK_AUTH_KEY']}".encode(),
            usedforsecurity=False,
        ).hexdigest()
        if not hmac.compare_digest(expected, headers["x-vod-signature"]):
            raise SystemExit("bad callback signature")

        class Event(BaseModel):
            EventType: str
            VideoId: str = Field(min_length=1, max_length=64)
            Status: str | None = None

        body = Event.model_validate_json(event["body"])
        calls = [("GetVideoInfo", {"VideoId": body.VideoId})]
    elif mode == "cleanup":
        ids = ",".join(uuid.uuid4().hex for _ in range(20))
        calls = [("GetVideoInfos", {"VideoIds": ids}), ("DeleteVideo", {"VideoIds": ids})]
    else:
        raise SystemExit(f"unknown mode {mode}")

    endpoint = os.environ["VOD_ENDPOINT"]
    host = endpoint.split("://", 1)[1].rstrip("/")
    status, answer = 0, None
    with httpx.Client(base_url=endpoint, timeout=10) as client:
        for action, params in calls:
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            query, headers = _signed(action, params, host, now, uuid.uuid4().hex)
            response = client.post("/?" + query, headers=headers)
            status, answer = response.status_code, response.json()
    t1 = time.perf_counter()
    print(
        "BENCH "
        + json.dumps(
            {
                "in_process_ms": (t1 - T0) * 1000,
                "import_ms": (t_import - T0) * 1000,
                "call_ms": (t1 - t_import) * 1000,
                "status": status,
                "answer": json.dumps(answer)[:200],
                "modules": len(sys.modules),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
