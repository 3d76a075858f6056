"""Child process: one way of trusting the VOD endpoint, in a fresh interpreter, timed.

``python tlsctx.py <mode>``: ``bundle`` (``ssl.create_default_context(cafile=...)`` on certifi's
bundle plus the test CA: httpx's default), ``default`` (``ssl.create_default_context()``: OpenSSL's
default bundle file and directory; ``SSL_CERT_DIR`` points the directory at the test store) or
``store`` (the hashed directory alone: what ``shared/vod.py`` chooses when the runtime has one).
Then one request to the stub (TLS handshake with full verification, one GetVideoInfo). Prints
``BENCH {json}``. ``BENCH_STUB`` = host:port, ``BENCH_CA_BUNDLE``, ``BENCH_CA_STORE``.
"""

import time

T0 = time.perf_counter()

import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import ssl  # noqa: E402
import sys  # noqa: E402


def main():
    mode = sys.argv[1]
    t_import = time.perf_counter()
    if mode == "bundle":
        ctx = ssl.create_default_context(cafile=os.environ["BENCH_CA_BUNDLE"])
    elif mode == "default":
        ctx = ssl.create_default_context()
    elif mode == "store":
        ctx = ssl.create_default_context(capath=os.environ["BENCH_CA_STORE"])
    else:
        raise SystemExit(f"unknown mode {mode}")
    t_ctx = time.perf_counter()
    host, port = os.environ["BENCH_STUB"].rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
    conn.request(
        "POST", "/?Action=GetVideoInfo&VideoId=0123456789abcdef", headers={"x-acs-action": "GetVideoInfo"}
    )
    status = conn.getresponse().status
    t_req = time.perf_counter()
    conn.close()
    stats = ctx.cert_store_stats()
    print(
        "BENCH "
        + json.dumps(
            {
                "import_ms": (t_import - T0) * 1000,
                "context_ms": (t_ctx - t_import) * 1000,
                "request_ms": (t_req - t_ctx) * 1000,
                "in_process_ms": (t_req - T0) * 1000,
                "status": status,
                "certificates_loaded": stats.get("x509", 0),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
