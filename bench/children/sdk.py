"""Child process: the first (cold) or repeated (warm) VOD call made with an official SDK.

Run by path (not ``-m``) so that nothing but this file and the SDK is imported:
``python sdk.py <current|legacy> <create|info|cleanup> <cold|warm> [n] [result-file]``.
Environment: ``BENCH_STUB`` (host:port of the HTTPS stub), ``BENCH_CA_BUNDLE`` (trusted roots).
Cold mode prints one line ``BENCH {json}`` as soon as the answer is in (the parent's clock stops
on that line).
"""

import time

T0 = time.perf_counter()

import os  # noqa: E402
import sys  # noqa: E402


def _peak_rss_kb():
    """VmHWM: this process's own peak RSS (getrusage's ru_maxrss keeps the parent's across fork+exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


AK_ID = "STS.NUbenchexampleaccesskey"
AK_SECRET = "bench-secret-not-real-0123456789"
TOKEN = "CAISbenchtoken" + "x" * 400
TITLE = "Summer trip 夏天"
USER_DATA = '{"Extend":{"localId":"abc-123"}}'
IDS = [f"{i:032x}" for i in range(1, 21)]


def current_client():
    from alibabacloud_tea_openapi.utils_models import Config
    from alibabacloud_vod20170321.client import Client
    from darabonba.runtime import RuntimeOptions

    config = Config(
        access_key_id=AK_ID,
        access_key_secret=AK_SECRET,
        security_token=TOKEN,
        endpoint=os.environ["BENCH_STUB"],
        protocol="https",
        region_id="cn-shanghai",
    )
    return Client(config), RuntimeOptions(ca=os.environ["BENCH_CA_BUNDLE"])


def current_call(kind, state):
    from alibabacloud_vod20170321 import models

    client, runtime = state
    if kind == "create":
        request = models.CreateUploadVideoRequest(
            title=TITLE,
            file_name="trip.mp4",
            file_size=52428800,
            description="Our summer trip",
            tags="travel,summer",
            user_data=USER_DATA,
            reference_id=os.urandom(16).hex(),
        )
        body = client.create_upload_video_with_options(request, runtime).body
        return body.video_id
    if kind == "info":
        request = models.GetVideoInfoRequest(video_id=IDS[0])
        return client.get_video_info_with_options(request, runtime).body.video.status
    infos = client.get_video_infos_with_options(models.GetVideoInfosRequest(video_ids=",".join(IDS)), runtime)
    ids = [v.video_id for v in infos.body.video_list]
    client.delete_video_with_options(models.DeleteVideoRequest(video_ids=",".join(ids)), runtime)
    return len(ids)


def legacy_client():
    from aliyunsdkcore.auth.credentials import StsTokenCredential
    from aliyunsdkcore.client import AcsClient

    credential = StsTokenCredential(AK_ID, AK_SECRET, TOKEN)
    return AcsClient(region_id="cn-shanghai", credential=credential, verify=os.environ["BENCH_CA_BUNDLE"])


def legacy_call(kind, client):
    import json

    endpoint = os.environ["BENCH_STUB"]
    if kind == "create":
        from aliyunsdkvod.request.v20170321.CreateUploadVideoRequest import CreateUploadVideoRequest

        request = CreateUploadVideoRequest()
        request.set_Title(TITLE)
        request.set_FileName("trip.mp4")
        request.set_FileSize(52428800)
        request.set_Description("Our summer trip")
        request.set_Tags("travel,summer")
        request.set_UserData(USER_DATA)
        request.set_ReferenceId(os.urandom(16).hex())
        requests_ = [request]
    elif kind == "info":
        from aliyunsdkvod.request.v20170321.GetVideoInfoRequest import GetVideoInfoRequest

        request = GetVideoInfoRequest()
        request.set_VideoId(IDS[0])
        requests_ = [request]
    else:
        from aliyunsdkvod.request.v20170321.DeleteVideoRequest import DeleteVideoRequest
        from aliyunsdkvod.request.v20170321.GetVideoInfosRequest import GetVideoInfosRequest

        request = GetVideoInfosRequest()
        request.set_VideoIds(",".join(IDS))
        requests_ = [request]
    answers = []
    for req in requests_:
        req.set_endpoint(endpoint)
        req.set_protocol_type("https")
        req.set_accept_format("JSON")
        answers.append(json.loads(client.do_action_with_exception(req)))
    if kind == "create":
        return answers[0]["VideoId"]
    if kind == "info":
        return answers[0]["Video"]["Status"]
    ids = [v["VideoId"] for v in answers[0]["VideoList"]]
    delete = DeleteVideoRequest()
    delete.set_VideoIds(",".join(ids))
    delete.set_endpoint(endpoint)
    delete.set_protocol_type("https")
    delete.set_accept_format("JSON")
    json.loads(client.do_action_with_exception(delete))
    return len(ids)


def main():
    code_dir = os.environ.get("BENCH_CODE_DIR")
    if code_dir:
        sys.path.insert(0, code_dir)
    sdk, kind, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    make, call = (current_client, current_call) if sdk == "current" else (legacy_client, legacy_call)
    if mode == "cold":
        state = make()
        t_client = time.perf_counter()
        if os.environ.get("BENCH_PHASE_MARK"):
            sys.stderr.write("BENCH-PHASE import-done\n")
        answer = call(kind, state)
        t1 = time.perf_counter()
        import json

        rss = _peak_rss_kb()
        print(
            "BENCH "
            + json.dumps(
                {
                    "in_process_ms": (t1 - T0) * 1000,
                    "setup_ms": (t_client - T0) * 1000,
                    "call_ms": (t1 - t_client) * 1000,
                    "maxrss_kb": rss,
                    "answer": str(answer),
                    "modules": len(sys.modules),
                }
            ),
            flush=True,
        )
        return
    n, out = int(sys.argv[4]), sys.argv[5]
    state = make()
    for _ in range(max(20, n // 20)):
        call(kind, state)
    samples = []
    clock = time.perf_counter
    start = clock()
    for _ in range(n):
        t = clock()
        call(kind, state)
        samples.append(clock() - t)
    total = clock() - start
    import json

    with open(out, "w") as fh:
        json.dump({"samples": samples, "total_s": total}, fh)


if __name__ == "__main__":
    main()
