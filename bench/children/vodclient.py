"""Child process: vodfc's own VOD client alone (``shared.vod.VodClient``), CreateUploadVideo in a loop.

The like-for-like counterpart of ``sdk.py ... warm``: the same parameters, no handler, no JWT,
no database. ``python vodclient.py <n> <result-file>``; settings come from the environment
(``VOD_ENDPOINT``, ``SSL_CERT_FILE``), ``BENCH_CODE_DIR`` = the credentials package.
"""

import json
import os
import sys
import time


def main():
    code_dir = os.environ.get("BENCH_CODE_DIR")
    if code_dir:
        sys.path.insert(0, code_dir)
    from shared.settings import get_settings
    from shared.signing import Credentials
    from shared.vod import VodClient

    n, out = int(sys.argv[1]), sys.argv[2]
    creds = Credentials(
        "STS.NUbenchexampleaccesskey", "bench-secret-not-real-0123456789", "CAISbench" + "x" * 400
    )
    client = VodClient(get_settings(), credentials=lambda: creds)

    def call():
        params = {
            "Title": "Summer trip 夏天",
            "FileName": "trip.mp4",
            "FileSize": "52428800",
            "Description": "Our summer trip",
            "Tags": "travel,summer",
            "UserData": '{"Extend":{"localId":"abc-123"}}',
            "ReferenceId": os.urandom(16).hex(),
        }
        return client.create_upload_video(params)

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
