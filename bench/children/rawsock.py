"""Child process: the floor of one VOD call, a prebuilt HTTP/1.1 request over one kept-alive TLS socket.

No signing, no URL building, no JSON parsing: only what any client must do to send a
CreateUploadVideo-sized request to the stub and read its answer.
``python rawsock.py <n> <result-file>``; ``BENCH_STUB`` = host:port, ``BENCH_CA_BUNDLE`` = roots.
"""

import json
import os
import socket
import ssl
import sys
import time


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    host, port = os.environ["BENCH_STUB"].rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=os.environ["BENCH_CA_BUNDLE"])
    sock = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    query = (
        "AppId=app-1000000&Description=Our%20summer%20trip&FileName=trip.mp4&FileSize=52428800"
        "&ReferenceId=0123456789abcdef0123456789abcdef&Tags=travel%2Csummer"
        "&Title=Summer%20trip%20%E5%A4%8F%E5%A4%A9&UserData=%7B%22Extend%22%3A%7B%22localId%22%3A%22abc-123%22%7D%7D"
    )
    request = (
        f"POST /?{query} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\nContent-Length: 0\r\n"
        "x-acs-action: CreateUploadVideo\r\nx-acs-version: 2017-03-21\r\n"
        "x-acs-date: 2026-11-25T10:00:00Z\r\nx-acs-signature-nonce: 0123456789abcdef\r\n"
        "x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n"
        "x-acs-security-token: " + "x" * 400 + "\r\n"
        "Authorization: ACS3-HMAC-SHA256 Credential=STS.bench,SignedHeaders=host;x-acs-action,"
        "Signature=" + "0" * 64 + "\r\n\r\n"
    ).encode()
    reader = sock.makefile("rb")

    def call():
        sock.sendall(request)
        length = 0
        while True:
            line = reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = reader.read(length)
        if not body:
            raise RuntimeError("empty answer")

    for _ in range(max(20, n // 20)):
        call()
    samples = []
    clock = time.perf_counter
    start = clock()
    for _ in range(n):
        t = clock()
        call()
        samples.append(clock() - t)
    total = clock() - start
    with open(out, "w") as fh:
        json.dump({"samples": samples, "total_s": total}, fh)


if __name__ == "__main__":
    main()
