"""shared.vod: the signed requests themselves, retries, deadlines, error translation, limits."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from shared import errors, vod_models
from shared.context import ContextCredentials, FakeContext
from shared.settings import Settings
from shared.signing import Credentials, canonical_query_string, rpc_v1_signature, v3_authorization
from shared.vod import (
    MAX_IDS,
    CredentialChain,
    VodClient,
    credentials_from,
    get_vod_client,
    reset_vod_client,
)
from tests.conftest import import_oracle

openapi_util = import_oracle("alibabacloud_openapi_util.client")
tea_request = import_oracle("Tea.request")

ENDPOINT = "https://vod.cn-shanghai.aliyuncs.com/"
NOW = datetime(2026, 1, 15, 8, 30, 0, tzinfo=timezone.utc)
NONCE = "3a7f1c2e9b8d4f6a8c0e2b4d6f8a0c1e"
CREDS = Credentials(
    "STS.NUxFakeKeyId", "FakeSecretForTestsOnly0123456789", "CAISFakeSecurityToken+/=0123456789"
)
REF = "0123456789abcdef0123456789abcdef"

# --- fixtures -----------------------------------------------------------------------------------


@dataclass
class FakeTime:
    """A monotonic clock and a sleep that only advances it."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "vod_region": "cn-shanghai",
        "vod_endpoint": None,
        "vod_signature_version": "v3",
        "vod_connect_timeout": 2.0,
        "vod_read_timeout": 5.0,
        "vod_deadline_seconds": 10.0,
        "vod_max_attempts": 3,
        "alibaba_cloud_access_key_id": None,
        "alibaba_cloud_access_key_secret": None,
        "alibaba_cloud_security_token": None,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def client_factory(fake_time: FakeTime) -> Iterator[Callable[..., VodClient]]:
    made: list[VodClient] = []

    def make(
        *, credentials: Callable[[], Credentials] | None = None, random: float = 0.5, **settings: Any
    ) -> VodClient:
        client = VodClient(
            make_settings(**settings),
            credentials=credentials or (lambda: CREDS),
            clock=fake_time,
            sleep=fake_time.sleep,
            random=lambda: random,
            nonce=lambda: NONCE,
            utcnow=lambda: NOW,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def vod() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as router:
        yield router


@pytest.fixture(autouse=True)
def _no_cached_client() -> Iterator[None]:
    reset_vod_client()
    yield
    reset_vod_client()


def b64json(value: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def credentials_body(video_id: str = "vid0001", request_id: str = "req-create") -> dict[str, Any]:
    return {
        "RequestId": request_id,
        "VideoId": video_id,
        "UploadAddress": b64json(
            {"Endpoint": "https://oss-cn-shanghai.aliyuncs.com", "Bucket": "outin-x", "FileName": "sv/x.mp4"}
        ),
        "UploadAuth": b64json(
            {
                "AccessKeyId": "STS.upload",
                "AccessKeySecret": "UploadSecretValue",
                "SecurityToken": "UploadTokenValue",
                "Expiration": "3600",
                "ExpireUTCTime": "2026-01-15T09:20:00Z",
            }
        ),
    }


def vod_error(status: int, code: str, message: str = "m", request_id: str = "vod-req-1") -> httpx.Response:
    body = {
        "RequestId": request_id,
        "HostId": "vod.cn-shanghai.aliyuncs.com",
        "Code": code,
        "Message": message,
    }
    return httpx.Response(status, json=body)


def action(name: str) -> dict[str, str]:
    return {"x-acs-action": name}


# --- independent recomputation of the signature on the captured request ------------------------


def sdk_v3_authorization(request: httpx.Request, creds: Credentials) -> str:
    """Authorization recomputed by alibabacloud-openapi-util over the headers the request names."""
    signed = request.headers["authorization"].split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    tea = tea_request.TeaRequest()
    tea.method = request.method
    tea.pathname = request.url.path
    tea.query = dict(request.url.params.multi_items())
    tea.headers = {name: request.headers[name] for name in signed}
    payload = hashlib.sha256(request.content).hexdigest()
    auth: str = openapi_util.Client.get_authorization(
        tea, "ACS3-HMAC-SHA256", payload, creds.access_key_id, creds.access_key_secret
    )
    return auth


def assert_v3_signed(request: httpx.Request, action_name: str, creds: Credentials = CREDS) -> dict[str, str]:
    assert request.method == "POST"
    assert request.url.path == "/"
    assert request.content == b""
    params = dict(request.url.params.multi_items())
    # The wire query is exactly the canonical query string: nothing re-encoded it.
    assert request.url.query.decode() == canonical_query_string(params)
    assert request.headers["x-acs-action"] == action_name
    assert request.headers["x-acs-version"] == "2017-03-21"
    assert request.headers["x-acs-date"] == "2026-01-15T08:30:00Z"
    assert request.headers["x-acs-signature-nonce"] == NONCE
    assert request.headers["x-acs-content-sha256"] == hashlib.sha256(b"").hexdigest()
    assert request.headers["accept"] == "application/json"
    assert request.headers.get("x-acs-security-token") == creds.security_token
    authorization = request.headers["authorization"]
    assert authorization.startswith(f"ACS3-HMAC-SHA256 Credential={creds.access_key_id},SignedHeaders=")
    assert authorization == sdk_v3_authorization(request, creds)
    signed_names = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    assert authorization == v3_authorization(
        method="POST",
        canonical_uri="/",
        query=params,
        headers={n: request.headers[n] for n in signed_names},
        body=b"",
        credentials=creds,
    )
    assert {"host", "x-acs-action", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"} <= set(
        signed_names
    )
    return params


# --- the signed request itself ------------------------------------------------------------------

CREATE_PARAMS = {
    "Title": "上传 测试 *~/+=&:% 🎬",
    "FileName": "upload test.mp4",
    "Description": "line one\nline two",
    "ReferenceId": REF,
    "AppId": "app-1000000",
}


def test_create_upload_video_sends_a_v3_signed_post(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    route = vod.post(ENDPOINT).respond(200, json=credentials_body())
    creds = client_factory().create_upload_video(CREATE_PARAMS)
    assert isinstance(creds, vod_models.UploadCredentials)
    assert creds.VideoId == "vid0001"
    assert creds.RequestId == "req-create"
    assert route.call_count == 1
    params = assert_v3_signed(route.calls.last.request, "CreateUploadVideo")
    assert params == CREATE_PARAMS
    raw = route.calls.last.request.url.query.decode()
    assert "Title=%E4%B8%8A%E4%BC%A0%20%E6%B5%8B%E8%AF%95%20%2A~%2F%2B%3D%26%3A%25%20%F0%9F%8E%AC" in raw
    assert "+" not in raw


def test_v1_signature_moves_action_into_the_query(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    route = vod.post(ENDPOINT).respond(200, json=credentials_body())
    client_factory(vod_signature_version="v1").create_upload_video(CREATE_PARAMS)
    request = route.calls.last.request
    assert request.method == "POST"
    assert "x-acs-action" not in request.headers
    assert "authorization" not in request.headers
    params = dict(request.url.params.multi_items())
    assert request.url.query.decode() == canonical_query_string(params)
    signature = params.pop("Signature")
    assert params == {
        **CREATE_PARAMS,
        "Action": "CreateUploadVideo",
        "Version": "2017-03-21",
        "Format": "JSON",
        "AccessKeyId": CREDS.access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": NONCE,
        "Timestamp": "2026-01-15T08:30:00Z",
        "SecurityToken": CREDS.security_token,
    }
    assert signature == openapi_util.Client.get_rpcsignature(params, "POST", CREDS.access_key_secret)
    assert signature == rpc_v1_signature("POST", params, CREDS.access_key_secret)


def test_credentials_are_fetched_for_every_request(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    rotating = iter(
        [Credentials("STS.one", "secret-one", "token-one"), Credentials("STS.two", "secret-two", "tok2")]
    )
    route = vod.post(ENDPOINT).respond(200, json={"RequestId": "r", "VideoList": [], "NonExistVideoIds": []})
    client = client_factory(credentials=lambda: next(rotating))
    client.get_video_infos(["a"])
    first = route.calls.last.request
    client.get_video_infos(["a"])
    second = route.calls.last.request
    assert first.headers["x-acs-security-token"] == "token-one"
    assert second.headers["x-acs-security-token"] == "tok2"
    assert (
        sdk_v3_authorization(second, Credentials("STS.two", "secret-two", "tok2"))
        == second.headers["authorization"]
    )


def test_endpoint_with_a_path_signs_that_path(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    route = vod.post("http://127.0.0.1:9000/vod/").respond(200, json=credentials_body())
    client_factory(vod_endpoint="http://127.0.0.1:9000/vod").refresh_upload_video("vid0001")
    request = route.calls.last.request
    assert request.url.path == "/vod/"
    assert request.headers["host"] == "127.0.0.1:9000"
    assert request.headers["authorization"] == sdk_v3_authorization(request, CREDS)


def test_http_client_is_built_lazily_and_reused(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    vod.post(ENDPOINT).respond(200, json=credentials_body())
    client = client_factory()
    assert client._http is None
    client.refresh_upload_video("vid0001")
    first = client._http
    client.refresh_upload_video("vid0001")
    assert client._http is first is not None
    client.close()
    assert client._http is None
    client.refresh_upload_video("vid0001")
    assert client._http is not None and client._http is not first


# --- each operation -----------------------------------------------------------------------------


def test_refresh_upload_video(vod: respx.MockRouter, client_factory: Callable[..., VodClient]) -> None:
    route = vod.post(ENDPOINT, headers=action("RefreshUploadVideo")).respond(200, json=credentials_body())
    creds = client_factory().refresh_upload_video("vid0001")
    assert creds.VideoId == "vid0001"
    assert assert_v3_signed(route.calls.last.request, "RefreshUploadVideo") == {"VideoId": "vid0001"}


def test_get_video_info(vod: respx.MockRouter, client_factory: Callable[..., VodClient]) -> None:
    body = {"RequestId": "r", "Video": {"VideoId": "vid0001", "Status": "Uploading", "Size": "123"}}
    route = vod.post(ENDPOINT, headers=action("GetVideoInfo")).respond(200, json=body)
    video = client_factory().get_video_info("vid0001")
    assert video.VideoId == "vid0001"
    assert video.Status == "Uploading"
    assert video.Size == 123
    assert assert_v3_signed(route.calls.last.request, "GetVideoInfo") == {"VideoId": "vid0001"}


def test_get_video_infos(vod: respx.MockRouter, client_factory: Callable[..., VodClient]) -> None:
    body = {"RequestId": "r", "VideoList": [{"VideoId": "a", "Status": "Normal"}], "NonExistVideoIds": ["b"]}
    route = vod.post(ENDPOINT, headers=action("GetVideoInfos")).respond(200, json=body)
    answer = client_factory().get_video_infos(["a", "b"])
    assert [v.VideoId for v in answer.VideoList] == ["a"]
    assert answer.NonExistVideoIds == ["b"]
    assert assert_v3_signed(route.calls.last.request, "GetVideoInfos") == {"VideoIds": "a,b"}
    assert "VideoIds=a%2Cb" in route.calls.last.request.url.query.decode()


def test_get_mezzanine_info(vod: respx.MockRouter, client_factory: Callable[..., VodClient]) -> None:
    body = {"RequestId": "r", "Mezzanine": {"VideoId": "vid0001", "Status": "Normal", "Size": 42}}
    route = vod.post(ENDPOINT, headers=action("GetMezzanineInfo")).respond(200, json=body)
    mezzanine = client_factory().get_mezzanine_info("vid0001")
    assert mezzanine.Status == "Normal"
    params = assert_v3_signed(route.calls.last.request, "GetMezzanineInfo")
    assert params["VideoId"] == "vid0001"


def test_delete_videos_by_video_ids(vod: respx.MockRouter, client_factory: Callable[..., VodClient]) -> None:
    route = vod.post(ENDPOINT, headers=action("DeleteVideo")).respond(200, json={"RequestId": "del-1"})
    assert client_factory().delete_videos(["a", "b"]) == "del-1"
    assert assert_v3_signed(route.calls.last.request, "DeleteVideo") == {"VideoIds": "a,b"}


def test_delete_videos_by_reference_ids(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    route = vod.post(ENDPOINT, headers=action("DeleteVideo")).respond(200, json={"RequestId": "del-2"})
    assert client_factory().delete_videos(reference_ids=[REF]) == "del-2"
    assert assert_v3_signed(route.calls.last.request, "DeleteVideo") == {"ReferenceIds": REF}


def test_delete_videos_without_request_id_is_an_upstream_error(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    vod.post(ENDPOINT).respond(200, json={})
    with pytest.raises(errors.UpstreamError):
        client_factory().delete_videos(["a"])


def test_search_media(vod: respx.MockRouter, client_factory: Callable[..., VodClient]) -> None:
    body = {
        "RequestId": "r",
        "Total": "1",
        "ScrollToken": "tok",
        "MediaList": [
            {"MediaId": "a", "MediaType": "video", "Video": {"VideoId": "a", "Status": "Uploading"}}
        ],
    }
    route = vod.post(ENDPOINT, headers=action("SearchMedia")).respond(200, json=body)
    match = "Status in ('Uploading') and CreationTime = ('2026-01-01T00:00:00Z',)"
    answer = client_factory().search_media(match, page_no=2, page_size=50, scroll_token="tok0")
    assert answer.Total == 1
    assert answer.MediaList[0].MediaId == "a"
    assert assert_v3_signed(route.calls.last.request, "SearchMedia") == {
        "SearchType": "video",
        "Match": match,
        "PageNo": "2",
        "PageSize": "50",
        "ScrollToken": "tok0",
    }


# --- limits (checked before any request: strict respx fails on an unmocked call) ----------------


def test_at_most_20_ids(vod: respx.MockRouter, client_factory: Callable[..., VodClient]) -> None:
    client = client_factory()
    ids = [f"v{i}" for i in range(MAX_IDS + 1)]
    with pytest.raises(errors.InvalidParameter) as info:
        client.get_video_infos(ids)
    assert info.value.code == "VideoIdsExceededMax"
    assert info.value.field == "VideoIds"
    with pytest.raises(errors.InvalidParameter):
        client.delete_videos(ids)
    with pytest.raises(errors.InvalidParameter) as info:
        client.delete_videos(reference_ids=ids)
    assert info.value.field == "ReferenceIds"


def test_exactly_20_ids_are_sent(vod: respx.MockRouter, client_factory: Callable[..., VodClient]) -> None:
    route = vod.post(ENDPOINT).respond(200, json={"RequestId": "r"})
    ids = [f"v{i}" for i in range(MAX_IDS)]
    client_factory().delete_videos(ids)
    assert dict(route.calls.last.request.url.params)["VideoIds"] == ",".join(ids)


def test_invalid_ids_and_arguments_are_refused(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    client = client_factory()
    for bad in (["a,b"], [""], ["a\nb"]):
        with pytest.raises(errors.InvalidParameter):
            client.get_video_infos(bad)
    with pytest.raises(errors.InvalidParameter):
        client.get_video_info("a,b")
    with pytest.raises(errors.InvalidParameter):
        client.delete_videos()
    with pytest.raises(errors.InvalidParameter):
        client.delete_videos(["a"], ["b"])
    with pytest.raises(errors.InvalidParameter):
        client.search_media("x", page_size=101)
    with pytest.raises(errors.InvalidParameter):
        client.search_media("x", page_no=0)
    with pytest.raises(TypeError):
        client.get_video_infos("abc")


def test_no_ids_make_no_call(vod: respx.MockRouter, client_factory: Callable[..., VodClient]) -> None:
    answer = client_factory().get_video_infos([])
    assert answer.VideoList == [] and answer.NonExistVideoIds == []


# --- retries ------------------------------------------------------------------------------------


def test_throttling_is_retried_with_jittered_backoff(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient], fake_time: FakeTime
) -> None:
    route = vod.post(ENDPOINT).mock(
        side_effect=[
            vod_error(400, "Throttling.User", "Request was denied due to user flow control."),
            vod_error(400, "Throttling", "throttled"),
            httpx.Response(200, json=credentials_body()),
        ]
    )
    creds = client_factory(random=0.5).refresh_upload_video("vid0001")
    assert creds.VideoId == "vid0001"
    assert route.call_count == 3
    # Full jitter: uniform(0, min(2.0, 0.2 * 2**(n-1))) with random() = 0.5.
    assert fake_time.sleeps == [pytest.approx(0.1), pytest.approx(0.2)]
    # Every attempt is signed afresh (and verifies).
    for call in route.calls:
        assert_v3_signed(call.request, "RefreshUploadVideo")


def test_http_429_honours_x_acs_retry_after(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient], fake_time: FakeTime
) -> None:
    vod.post(ENDPOINT).mock(
        side_effect=[
            httpx.Response(429, headers={"x-acs-retry-after": "3"}, json={"Code": "Throttling.Api"}),
            httpx.Response(200, json=credentials_body()),
        ]
    )
    client_factory().refresh_upload_video("vid0001")
    assert fake_time.sleeps == [3.0]


def test_retry_after_beyond_the_deadline_gives_up_at_once(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient], fake_time: FakeTime
) -> None:
    route = vod.post(ENDPOINT).respond(
        429, headers={"x-acs-retry-after": "30"}, json={"Code": "Throttling.User", "RequestId": "vr-9"}
    )
    with pytest.raises(errors.Throttled) as info:
        client_factory().refresh_upload_video("vid0001")
    assert route.call_count == 1
    assert fake_time.sleeps == []
    assert info.value.retry_after == 30
    assert info.value.vod_request_id == "vr-9"
    assert info.value.status == 503


def test_exhausted_throttling_raises_throttled(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient], fake_time: FakeTime
) -> None:
    route = vod.post(ENDPOINT).mock(return_value=vod_error(400, "Throttling.User", request_id="vr-1"))
    with pytest.raises(errors.Throttled) as info:
        client_factory(vod_max_attempts=4).get_video_infos(["a"])
    assert route.call_count == 4
    assert len(fake_time.sleeps) == 3
    assert info.value.code == "Throttling.User"
    assert info.value.vod_request_id == "vr-1"
    assert info.value.headers() == {"Retry-After": "1"}


@pytest.mark.parametrize(
    "failure",
    [
        vod_error(500, "InternalError"),
        vod_error(503, "ServiceUnAvailable"),
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow dial"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("garbled"),
        httpx.ReadTimeout("slow"),
    ],
    ids=[
        "500",
        "503",
        "502-html",
        "connect-error",
        "connect-timeout",
        "read-error",
        "protocol",
        "read-timeout",
    ],
)
def test_transient_failures_are_retried(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient], failure: httpx.Response | Exception
) -> None:
    route = vod.post(ENDPOINT).mock(side_effect=[failure, httpx.Response(200, json=credentials_body())])
    assert client_factory().refresh_upload_video("vid0001").VideoId == "vid0001"
    assert route.call_count == 2


def test_exhausted_5xx_raises_service_unavailable_with_vod_request_id(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    route = vod.post(ENDPOINT).mock(return_value=vod_error(500, "InternalError", request_id="vr-500"))
    with pytest.raises(errors.VodUnavailable) as info:
        client_factory().get_video_info("vid0001")
    assert route.call_count == 3
    assert info.value.code == "InternalError"
    assert info.value.vod_request_id == "vr-500"


def test_exhausted_connect_errors_raise_service_unavailable(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    vod.post(ENDPOINT).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(errors.VodUnavailable) as info:
        client_factory().get_video_info("vid0001")
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert not isinstance(info.value, errors.StoreUnavailable)


def test_max_attempts_one_means_no_retry(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    route = vod.post(ENDPOINT).mock(return_value=vod_error(503, "ServiceUnAvailable"))
    with pytest.raises(errors.VodUnavailable):
        client_factory(vod_max_attempts=1).get_video_info("vid0001")
    assert route.call_count == 1


# --- deadline -----------------------------------------------------------------------------------


def test_deadline_caps_attempts_and_their_timeouts(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient], fake_time: FakeTime
) -> None:
    timeouts: list[dict[str, float]] = []

    def slow(request: httpx.Request) -> httpx.Response:
        timeouts.append(dict(request.extensions["timeout"]))
        fake_time.now += request.extensions["timeout"]["read"]  # the whole read timeout elapses
        raise httpx.ReadTimeout("slow", request=request)

    route = vod.post(ENDPOINT).mock(side_effect=slow)
    with pytest.raises(errors.GatewayTimeout) as info:
        client_factory(vod_deadline_seconds=10.0, vod_max_attempts=10).get_video_info("vid0001")
    assert info.value.status == 504
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    # 5 s read, 0.1 s backoff, then only 4.9 s are left, then the deadline.
    assert route.call_count == 2
    assert timeouts[0] == {"connect": 2.0, "read": 5.0, "write": 5.0, "pool": 2.0}
    assert timeouts[1]["read"] == pytest.approx(4.9)
    assert timeouts[1]["connect"] == 2.0
    assert fake_time.now - 1000.0 <= 10.0 + 1e-9


def test_short_deadline_caps_connect_and_read_timeouts(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    route = vod.post(ENDPOINT).respond(200, json=credentials_body())
    client_factory(vod_deadline_seconds=1.5).refresh_upload_video("vid0001")
    assert route.calls.last.request.extensions["timeout"] == {
        "connect": 1.5,
        "read": 1.5,
        "write": 1.5,
        "pool": 1.5,
    }


def test_backoff_never_sleeps_past_the_deadline(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient], fake_time: FakeTime
) -> None:
    def slow_5xx(request: httpx.Request) -> httpx.Response:
        fake_time.now += 2.9
        return vod_error(503, "ServiceUnAvailable")

    vod.post(ENDPOINT).mock(side_effect=slow_5xx)
    with pytest.raises(errors.VodUnavailable):
        client_factory(vod_deadline_seconds=6.0, vod_max_attempts=10, random=1.0).get_video_info("vid0001")
    assert fake_time.now - 1000.0 <= 6.0


# --- error translation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected_class", "expected_status"),
    [
        (400, "InvalidParameter", errors.VodApiError, 400),
        (400, "MissingParameter", errors.VodApiError, 400),
        (400, "InvalidFileName.Extension", errors.VodApiError, 400),
        (400, "IllegalCharacters", errors.VodApiError, 400),
        (400, "LengthExceededMax", errors.VodApiError, 400),
        (400, "TagsExceededMax", errors.VodApiError, 400),
        (400, "VideoIdsExceededMax", errors.VodApiError, 400),
        (400, "InvalidVideo.Damaged", errors.VodApiError, 400),
        (403, "Forbidden.IllegalStatus", errors.VodApiError, 403),
        (404, "InvalidVideo.NotFound", errors.NotFound, 404),
        (404, "InvalidFile.NotFound", errors.VodApiError, 404),
        (403, "Forbidden.RAM", errors.VodApiError, 502),
        (403, "OperationDenied.Suspended", errors.VodApiError, 502),
        (404, "InvalidTemplateGroupId.NotFound", errors.VodApiError, 502),
        (404, "InvalidAccessKeyId.NotFound", errors.VodApiError, 502),
    ],
)
def test_vod_error_bodies_are_translated_and_not_retried(
    vod: respx.MockRouter,
    client_factory: Callable[..., VodClient],
    status: int,
    code: str,
    expected_class: type[errors.VodfcError],
    expected_status: int,
) -> None:
    route = vod.post(ENDPOINT).mock(return_value=vod_error(status, code, "Specified thing is bad.", "vr-42"))
    with pytest.raises(errors.VodfcError) as info:
        client_factory().refresh_upload_video("vid0001")
    assert type(info.value) is expected_class
    assert info.value.code == code
    assert info.value.status == expected_status
    assert info.value.vod_request_id == "vr-42"
    assert route.call_count == 1


def test_signature_errors_never_echo_the_string_to_sign(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    # The gateway's message quotes its string-to-sign, which holds the STS token.
    message = (
        "Specified signature is not matched with our calculation. server string to sign is:"
        f"POST&%2F&SecurityToken%3D{CREDS.security_token}"
    )
    vod.post(ENDPOINT).mock(return_value=vod_error(400, "SignatureDoesNotMatch", message))
    with pytest.raises(errors.VodApiError) as info:
        client_factory().refresh_upload_video("vid0001")
    assert info.value.code == "SignatureDoesNotMatch"
    assert info.value.status == 502
    rendered = json.dumps(errors.render(info.value, "req"))
    assert "CAISFakeSecurityToken" not in rendered
    assert "SignatureDoesNotMatch" in rendered


def test_secrets_in_other_vod_messages_are_scrubbed(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    message = (
        f"odd: {CREDS.security_token} / {CREDS.access_key_secret} / CAISFakeSecurityToken%2B%2F%3D0123456789"
    )
    vod.post(ENDPOINT).mock(return_value=vod_error(403, "Forbidden", message))
    with pytest.raises(errors.VodApiError) as info:
        client_factory().refresh_upload_video("vid0001")
    assert "CAISFakeSecurityToken" not in info.value.message
    assert CREDS.access_key_secret not in info.value.message


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>captive portal</html>"),
        httpx.Response(200, content=b"\xff\xfe not utf-8"),
        httpx.Response(200, json=["a", "list"]),
        httpx.Response(200, json={"RequestId": "r", "VideoId": "v"}),  # no UploadAddress / UploadAuth
        httpx.Response(200, json={"RequestId": "r", "VideoId": "", "UploadAddress": "x", "UploadAuth": "y"}),
    ],
    ids=["html", "binary", "list", "missing-fields", "empty-video-id"],
)
def test_malformed_200_answers_are_upstream_errors(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient], response: httpx.Response
) -> None:
    route = vod.post(ENDPOINT).mock(return_value=response)
    with pytest.raises(errors.UpstreamError) as info:
        client_factory().refresh_upload_video("vid0001")
    assert type(info.value) is errors.UpstreamError
    assert info.value.status == 502
    assert route.call_count == 1


def test_malformed_answer_error_does_not_chain_the_secret_bearing_input(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    body = credentials_body()
    body["VideoId"] = {"not": "a string"}
    vod.post(ENDPOINT).respond(200, json=body)
    with pytest.raises(errors.UpstreamError) as info:
        client_factory().refresh_upload_video("vid0001")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert body["UploadAuth"] not in str(info.value)


@pytest.mark.parametrize(
    "response",
    [httpx.Response(404, text="not json"), httpx.Response(400, json={"RequestId": "r"}), httpx.Response(302)],
    ids=["404-text", "400-no-code", "redirect"],
)
def test_codeless_4xx_and_redirects_are_upstream_errors(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient], response: httpx.Response
) -> None:
    route = vod.post(ENDPOINT).mock(return_value=response)
    with pytest.raises(errors.UpstreamError):
        client_factory().get_video_info("vid0001")
    assert route.call_count == 1


def test_unusable_endpoint_is_a_server_error_not_an_httpx_exception(
    client_factory: Callable[..., VodClient],
) -> None:
    with pytest.raises(errors.VodfcError) as info:
        client_factory(vod_endpoint="ftp://vod.example.com").get_video_info("vid0001")
    assert info.value.status == 500
    assert isinstance(info.value.__cause__, httpx.UnsupportedProtocol)


# --- CreateUploadVideo: when is a retry safe? ---------------------------------------------------


def test_create_with_reference_id_is_retried_after_a_lost_answer(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    route = vod.post(ENDPOINT, headers=action("CreateUploadVideo")).mock(
        side_effect=[httpx.ReadTimeout("lost"), httpx.Response(200, json=credentials_body())]
    )
    assert client_factory().create_upload_video(CREATE_PARAMS).VideoId == "vid0001"
    assert route.call_count == 2
    assert [dict(c.request.url.params)["ReferenceId"] for c in route.calls] == [REF, REF]


def test_create_refused_after_a_lost_answer_is_resolved_by_reference_id(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    create = vod.post(ENDPOINT, headers=action("CreateUploadVideo")).mock(
        side_effect=[httpx.ReadTimeout("lost"), vod_error(400, "InvalidParameter", "ReferenceId exists")]
    )
    lookup = vod.post(ENDPOINT, headers=action("GetVideoInfos")).respond(
        200,
        json={
            "RequestId": "r",
            "VideoList": [{"VideoId": "vid-made", "ReferenceId": REF}],
            "NonExistVideoIds": [],
        },
    )
    refresh = vod.post(ENDPOINT, headers=action("RefreshUploadVideo")).respond(
        200, json=credentials_body("vid-made", "req-refresh")
    )
    creds = client_factory().create_upload_video(CREATE_PARAMS)
    assert creds.VideoId == "vid-made"
    assert create.call_count == 2
    assert dict(lookup.calls.last.request.url.params) == {"ReferenceIds": REF}
    assert dict(refresh.calls.last.request.url.params) == {"VideoId": "vid-made"}
    assert_v3_signed(lookup.calls.last.request, "GetVideoInfos")


def test_create_refused_and_not_found_by_reference_id_raises_the_refusal(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    vod.post(ENDPOINT, headers=action("CreateUploadVideo")).mock(
        side_effect=[vod_error(503, "AddVideoFailed"), vod_error(400, "InvalidParameter", "bad title")]
    )
    vod.post(ENDPOINT, headers=action("GetVideoInfos")).respond(
        200, json={"RequestId": "r", "VideoList": [{"VideoId": "other", "ReferenceId": "someone-else"}]}
    )
    with pytest.raises(errors.VodApiError) as info:
        client_factory().create_upload_video(CREATE_PARAMS)
    assert info.value.code == "InvalidParameter"


def test_create_whose_answers_all_timed_out_is_looked_up_by_reference_id(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    create = vod.post(ENDPOINT, headers=action("CreateUploadVideo")).mock(
        side_effect=httpx.ReadTimeout("lost")
    )
    vod.post(ENDPOINT, headers=action("GetVideoInfos")).respond(
        200, json={"RequestId": "r", "VideoList": [{"VideoId": "vid-made", "ReferenceId": REF}]}
    )
    vod.post(ENDPOINT, headers=action("RefreshUploadVideo")).respond(200, json=credentials_body("vid-made"))
    assert client_factory().create_upload_video(CREATE_PARAMS).VideoId == "vid-made"
    assert create.call_count == 3


def test_create_timing_out_and_unknown_to_vod_raises_gateway_timeout(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    vod.post(ENDPOINT, headers=action("CreateUploadVideo")).mock(side_effect=httpx.ReadTimeout("lost"))
    vod.post(ENDPOINT, headers=action("GetVideoInfos")).respond(
        200, json={"RequestId": "r", "VideoList": [], "NonExistVideoIds": []}
    )
    with pytest.raises(errors.GatewayTimeout):
        client_factory().create_upload_video(CREATE_PARAMS)


def test_create_refused_at_once_is_not_looked_up(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    route = vod.post(ENDPOINT, headers=action("CreateUploadVideo")).mock(
        return_value=vod_error(400, "InvalidFileName.Extension")
    )
    with pytest.raises(errors.VodApiError):
        client_factory().create_upload_video(CREATE_PARAMS)
    assert route.call_count == 1


def test_create_lookup_failure_raises_the_original_error(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    vod.post(ENDPOINT, headers=action("CreateUploadVideo")).mock(
        side_effect=[httpx.ReadTimeout("lost"), vod_error(400, "InvalidParameter", "dup")]
    )
    vod.post(ENDPOINT, headers=action("GetVideoInfos")).mock(return_value=vod_error(403, "Forbidden.RAM"))
    with pytest.raises(errors.VodApiError) as info:
        client_factory().create_upload_video(CREATE_PARAMS)
    assert info.value.code == "InvalidParameter"


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("lost"), httpx.ReadError("reset"), vod_error(500, "InternalError")],
    ids=["read-timeout", "read-error", "500"],
)
def test_create_without_reference_id_is_never_retried_after_an_ambiguous_failure(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient], failure: httpx.Response | Exception
) -> None:
    route = vod.post(ENDPOINT).mock(side_effect=[failure])
    params = {k: v for k, v in CREATE_PARAMS.items() if k != "ReferenceId"}
    with pytest.raises((errors.GatewayTimeout, errors.VodUnavailable)):
        client_factory().create_upload_video(params)
    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("dial"), vod_error(400, "Throttling.User")],
    ids=["connect-error", "connect-timeout", "throttled"],
)
def test_create_without_reference_id_is_retried_when_vod_surely_did_nothing(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient], failure: httpx.Response | Exception
) -> None:
    route = vod.post(ENDPOINT).mock(side_effect=[failure, httpx.Response(200, json=credentials_body())])
    params = {k: v for k, v in CREATE_PARAMS.items() if k != "ReferenceId"}
    assert client_factory().create_upload_video(params).VideoId == "vid0001"
    assert route.call_count == 2


# --- credentials --------------------------------------------------------------------------------


def _context(key_id: str = "STS.ctx", secret: str = "ctx-secret", token: str = "ctx-token") -> FakeContext:  # noqa: S107
    return FakeContext(credentials=ContextCredentials(key_id, secret, token))


def test_credentials_prefer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(
        alibaba_cloud_access_key_id="LTAIsettings",
        alibaba_cloud_access_key_secret="settings-secret",
        alibaba_cloud_security_token="settings-token",
    )
    chain = CredentialChain(settings, _context(), environ={"ALIBABA_CLOUD_ACCESS_KEY_ID": "env"})
    assert chain() == Credentials("LTAIsettings", "settings-secret", "settings-token")


def test_credentials_then_the_fc_context() -> None:
    chain = CredentialChain(make_settings(), _context(), environ={})
    assert chain() == Credentials("STS.ctx", "ctx-secret", "ctx-token")


def test_credentials_then_the_environment_read_at_call_time() -> None:
    env: dict[str, str] = {}
    chain = CredentialChain(make_settings(), FakeContext(), environ=env)
    env.update(ALIBABA_CLOUD_ACCESS_KEY_ID="STS.env", ALIBABA_CLOUD_ACCESS_KEY_SECRET="env-secret")
    assert chain() == Credentials("STS.env", "env-secret", None)
    env["ALIBABA_CLOUD_SECURITY_TOKEN"] = "env-token"
    assert chain().security_token == "env-token"


def test_context_without_credentials_attribute_falls_through() -> None:
    chain = CredentialChain(
        make_settings(),
        object(),
        environ={"ALIBABA_CLOUD_ACCESS_KEY_ID": "a", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "b"},
    )
    assert chain().access_key_id == "a"


def test_missing_credentials_are_a_clear_error() -> None:
    chain = CredentialChain(make_settings(), None, environ={})
    with pytest.raises(errors.ServiceUnavailable) as info:
        chain()
    assert info.value.code == "MissingCredentials"
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in info.value.message


def test_half_a_key_pair_is_a_clear_error() -> None:
    chain = CredentialChain(make_settings(alibaba_cloud_access_key_id="LTAIonly"), _context(), environ={})
    with pytest.raises(errors.ServiceUnavailable, match="AccessKeySecret") as info:
        chain()
    assert info.value.code == "MissingCredentials"


def test_missing_credentials_surface_from_a_call(vod: respx.MockRouter, fake_time: FakeTime) -> None:
    client = VodClient(make_settings(), credentials=CredentialChain(make_settings(), None, environ={}))
    with pytest.raises(errors.ServiceUnavailable) as info:
        client.get_video_info("vid0001")
    assert info.value.code == "MissingCredentials"
    client.close()


def test_credentials_repr_never_shows_secrets() -> None:
    text = repr(CREDS)
    assert CREDS.access_key_secret not in text
    assert CREDS.security_token is not None and CREDS.security_token not in text


# --- the instance's client ----------------------------------------------------------------------


def test_get_vod_client_is_cached_per_settings_and_follows_the_context(vod: respx.MockRouter) -> None:
    settings = make_settings()
    first = get_vod_client(settings, _context("STS.first", "s1", "t1"))
    assert get_vod_client(settings) is first
    assert get_vod_client(settings, _context("STS.second", "s2", "t2")) is first
    route = vod.post(ENDPOINT).respond(200, json=credentials_body())
    first.refresh_upload_video("vid0001")
    request = route.calls.last.request
    assert request.headers["x-acs-security-token"] == "t2"
    assert request.headers["authorization"] == sdk_v3_authorization(
        request, Credentials("STS.second", "s2", "t2")
    )
    other = get_vod_client(make_settings())
    assert other is not first
    assert first._http is None  # the replaced client was closed
    reset_vod_client()
    assert get_vod_client(settings) is not other


def test_credentials_from_builds_a_chain() -> None:
    chain = credentials_from(make_settings(), _context())
    assert isinstance(chain, CredentialChain)
    assert chain().access_key_id == "STS.ctx"


# --- logging ------------------------------------------------------------------------------------


def test_retries_are_logged_without_secrets(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient], caplog: pytest.LogCaptureFixture
) -> None:
    vod.post(ENDPOINT).mock(
        side_effect=[
            vod_error(503, "ServiceUnAvailable", request_id="vr-7"),
            httpx.Response(200, json=credentials_body()),
        ]
    )
    with caplog.at_level(logging.DEBUG):
        creds = client_factory().create_upload_video(CREATE_PARAMS)
    assert any(getattr(r, "vod_request_id", None) == "vr-7" for r in caplog.records)
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    for secret in (
        CREDS.access_key_secret,
        CREDS.security_token or "",
        creds.UploadAuth,
        "UploadSecretValue",
    ):
        assert secret not in text
    assert creds.UploadAuth not in repr(creds)


# --- the hot path -------------------------------------------------------------------------------


def test_default_wall_clock_timestamp_matches_format_timestamp() -> None:
    from shared.signing import format_timestamp
    from shared.vod import _wall_timestamp

    before = format_timestamp(datetime.now(timezone.utc))
    stamp = _wall_timestamp()
    after = format_timestamp(datetime.now(timezone.utc))
    assert before <= stamp <= after
    assert len(stamp) == 20 and stamp.endswith("Z")


def test_ssl_context_is_built_once_across_rebuilt_clients() -> None:
    import shared.vod

    client = VodClient(make_settings(), credentials=lambda: CREDS)
    first_http, _ = client._client()
    context = shared.vod._ssl
    assert context is not None
    client.close()
    second_http, _ = client._client()
    assert second_http is not first_http
    assert shared.vod._ssl is context
    client.close()


def test_response_cookies_are_neither_kept_nor_sent(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    route = vod.post(ENDPOINT).respond(200, json=credentials_body(), headers={"set-cookie": "a=b; Path=/"})
    client = client_factory()
    client.refresh_upload_video("vid0001")
    client.refresh_upload_video("vid0001")
    assert "cookie" not in route.calls.last.request.headers
    assert client._http is not None and not list(client._http.cookies.jar)


@pytest.mark.parametrize("version", ["v3", "v1"])
def test_request_url_is_parsed_once_and_carries_the_canonical_query(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient], version: str
) -> None:
    route = vod.post(ENDPOINT).respond(200, json=credentials_body())
    client_factory(vod_signature_version=version).refresh_upload_video("vid0001")
    request = route.calls.last.request
    query = request.url.query.decode("ascii")
    assert query == canonical_query_string(dict(parse_qsl(query, keep_blank_values=True)))
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"] == "vodfc"


# --- images and attached media ----------------------------------------------------------------


def image_credentials_body(image_id: str = "img0001") -> dict[str, Any]:
    body = credentials_body(request_id="req-image")
    del body["VideoId"]
    url = f"https://outin-x.oss-cn-shanghai.aliyuncs.com/image/cover/{image_id}.png"
    return {**body, "ImageId": image_id, "ImageURL": url, "FileURL": url}


def attached_credentials_body(media_id: str = "att0001") -> dict[str, Any]:
    body = credentials_body(request_id="req-attached")
    del body["VideoId"]
    url = f"https://outin-x.oss-cn-shanghai.aliyuncs.com/attached/subtitle/{media_id}.vtt"
    return {**body, "MediaId": media_id, "MediaURL": url, "FileURL": url}


IMAGE_PARAMS = {"ImageType": "cover", "ImageExt": "png", "Title": "封面 cover"}
ATTACHED_PARAMS = {"BusinessType": "subtitle", "MediaExt": "vtt", "FileSize": "2048"}
CREATES = [
    ("CreateUploadImage", "create_upload_image", IMAGE_PARAMS, image_credentials_body, "ImageId"),
    (
        "CreateUploadAttachedMedia",
        "create_upload_attached_media",
        ATTACHED_PARAMS,
        attached_credentials_body,
        "MediaId",
    ),
]


@pytest.mark.parametrize(("name", "method", "params", "body", "id_field"), CREATES, ids=["image", "attached"])
def test_media_creates_send_a_v3_signed_post_and_answer_in_vods_names(
    vod: respx.MockRouter,
    client_factory: Callable[..., VodClient],
    name: str,
    method: str,
    params: dict[str, str],
    body: Callable[[], dict[str, Any]],
    id_field: str,
) -> None:
    route = vod.post(ENDPOINT).respond(200, json=body())
    creds = getattr(client_factory(), method)(params)
    assert assert_v3_signed(route.calls.last.request, name) == params
    assert creds.media_id == body()[id_field]
    public = creds.to_public_dict()
    assert public == {k: body()[k] for k in public} and set(public) == set(body())
    assert "UploadSecretValue" not in repr(creds)


@pytest.mark.parametrize(("name", "method", "params", "body", "id_field"), CREATES, ids=["image", "attached"])
@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("lost"), httpx.ReadError("reset"), vod_error(500, "InternalError")],
    ids=["read-timeout", "read-error", "500"],
)
def test_media_creates_are_never_retried_after_an_ambiguous_failure(
    vod: respx.MockRouter,
    client_factory: Callable[..., VodClient],
    failure: httpx.Response | Exception,
    name: str,
    method: str,
    params: dict[str, str],
    body: Callable[[], dict[str, Any]],
    id_field: str,
) -> None:
    # CreateUploadImage and CreateUploadAttachedMedia take no ReferenceId: a second create after a
    # lost answer could leave an untracked media, so the caller learns VOD may have acted instead.
    route = vod.post(ENDPOINT).mock(side_effect=[failure])
    with pytest.raises((errors.GatewayTimeout, errors.VodUnavailable)) as info:
        getattr(client_factory(), method)(params)
    assert route.call_count == 1
    assert isinstance(info.value, errors.VodError) and info.value.may_have_acted


@pytest.mark.parametrize(("name", "method", "params", "body", "id_field"), CREATES, ids=["image", "attached"])
@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("dial"), vod_error(400, "Throttling.User")],
    ids=["connect-error", "connect-timeout", "throttled"],
)
def test_media_creates_are_retried_when_vod_surely_did_nothing(
    vod: respx.MockRouter,
    client_factory: Callable[..., VodClient],
    failure: httpx.Response | Exception,
    name: str,
    method: str,
    params: dict[str, str],
    body: Callable[[], dict[str, Any]],
    id_field: str,
) -> None:
    route = vod.post(ENDPOINT).mock(side_effect=[failure, httpx.Response(200, json=body())])
    assert getattr(client_factory(), method)(params).media_id == body()[id_field]
    assert route.call_count == 2


def test_a_refused_media_create_says_vod_did_not_act(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    vod.post(ENDPOINT).mock(side_effect=[vod_error(400, "InvalidParameter", "bad ImageType")])
    with pytest.raises(errors.VodApiError) as info:
        client_factory().create_upload_image(IMAGE_PARAMS)
    assert info.value.status == 400 and not info.value.may_have_acted


def test_the_wrapped_create_upload_image_answer_of_the_2021_docs_is_read(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    wrapped = {"CreateUploadImageResponse": image_credentials_body()}
    vod.post(ENDPOINT).respond(200, json=wrapped)
    creds = client_factory().create_upload_image(IMAGE_PARAMS)
    assert creds.ImageId == "img0001" and creds.RequestId == "req-image" and creds.ImageURL


def test_get_image_info_and_a_missing_image(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    info = {"ImageId": "img1", "Status": "Normal", "Mezzanine": {"FileSize": "105520", "Width": 640}}
    route = vod.post(ENDPOINT).mock(
        side_effect=[
            httpx.Response(200, json={"RequestId": "r", "ImageInfo": info}),
            vod_error(404, "NoSuchResource", "The specified resource does not exist."),
        ]
    )
    client = client_factory()
    image = client.get_image_info("img1")
    assert image.Status == "Normal" and image.Mezzanine is not None and image.Mezzanine.FileSize == 105520
    assert assert_v3_signed(route.calls.last.request, "GetImageInfo") == {"ImageId": "img1"}
    with pytest.raises(errors.NotFound) as missing:
        client.get_image_info("img2")
    assert missing.value.code == "NoSuchResource" and missing.value.status == 404
    assert route.call_count == 2  # a 404 is VOD's verdict: not retried


def test_get_image_infos(vod: respx.MockRouter, client_factory: Callable[..., VodClient]) -> None:
    body = {
        "RequestId": "r",
        "ImageInfo": [{"ImageId": "a", "Status": "Uploading"}],
        "NonExistImageIds": ["b"],
    }
    route = vod.post(ENDPOINT).respond(200, json=body)
    answer = client_factory().get_image_infos(["a", "b"])
    assert [i.ImageId for i in answer.ImageInfo] == ["a"] and answer.NonExistImageIds == ["b"]
    assert assert_v3_signed(route.calls.last.request, "GetImageInfos") == {"ImageIds": "a,b"}


def test_get_attached_media_info(vod: respx.MockRouter, client_factory: Callable[..., VodClient]) -> None:
    body = {
        "RequestId": "r",
        "AttachedMediaList": [{"MediaId": "a", "Type": "subtitle", "Status": "Normal"}],
        "NonExistMediaIds": ["b"],
    }
    route = vod.post(ENDPOINT).respond(200, json=body)
    answer = client_factory().get_attached_media_info(["a", "b"])
    assert [(m.MediaId, m.Type) for m in answer.AttachedMediaList] == [("a", "subtitle")]
    assert answer.NonExistMediaIds == ["b"]
    assert assert_v3_signed(route.calls.last.request, "GetAttachedMediaInfo") == {"MediaIds": "a,b"}


def test_delete_images_and_attached_media(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    images = vod.post(ENDPOINT, headers=action("DeleteImage")).respond(200, json={"RequestId": "del-1"})
    attached = vod.post(ENDPOINT, headers=action("DeleteAttachedMedia")).respond(
        200, json={"RequestId": "del-2", "NonExistMediaIds": "x"}
    )
    client = client_factory()
    assert client.delete_images(["a", "b"]) == "del-1"
    assert assert_v3_signed(images.calls.last.request, "DeleteImage") == {
        "DeleteImageType": "ImageId",
        "ImageIds": "a,b",
    }
    assert client.delete_attached_media(["x", "y"]).NonExistMediaIds == ["x"]
    assert assert_v3_signed(attached.calls.last.request, "DeleteAttachedMedia") == {"MediaIds": "x,y"}


def test_image_and_attached_media_ids_are_limited_to_20_before_vod_is_called(
    vod: respx.MockRouter, client_factory: Callable[..., VodClient]
) -> None:
    client = client_factory()
    ids = [f"id{i}" for i in range(MAX_IDS + 1)]
    for call in (
        client.get_image_infos,
        client.get_attached_media_info,
        client.delete_images,
        client.delete_attached_media,
    ):
        with pytest.raises(errors.InvalidParameter) as info:
            call(ids)
        assert info.value.code == "ExceededMax"
    for call in (client.delete_images, client.delete_attached_media):
        with pytest.raises(errors.InvalidParameter):
            call([])
    assert (
        client.get_image_infos([]).ImageInfo == []
        and client.get_attached_media_info([]).AttachedMediaList == []
    )
    with pytest.raises(errors.InvalidParameter):
        client.get_image_info("a,b")
