"""Known-answer tests for shared.signing: published vectors, the worked example, callbacks."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from shared import errors
from shared.signing import (
    EMPTY_SHA256,
    Credentials,
    callback_signature,
    canonical_query_string,
    format_timestamp,
    new_nonce,
    percent_encode,
    rpc_v1_common_params,
    rpc_v1_signature,
    rpc_v1_string_to_sign,
    v3_authorization,
    v3_canonical_request,
    v3_sign_headers,
    verify_callback,
)

# --- percent-encoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("AZaz09-_.~", "AZaz09-_.~"),
        (" ", "%20"),
        ("*", "%2A"),
        ("+", "%2B"),
        ("/", "%2F"),
        ("=", "%3D"),
        ("&", "%26"),
        (":", "%3A"),
        ("%", "%25"),
        ("\n", "%0A"),
        ("中", "%E4%B8%AD"),
        ("😀", "%F0%9F%98%80"),
        ("é", "%C3%A9"),
        ("a b*c~d", "a%20b%2Ac~d"),
        ("2016-02-23T12:46:24Z", "2016-02-23T12%3A46%3A24Z"),
        ("", ""),
    ],
)
def test_percent_encode_follows_rfc3986_over_utf8(raw: str, encoded: str) -> None:
    assert percent_encode(raw) == encoded


def test_canonical_query_string_sorts_by_name_and_keeps_empty_values() -> None:
    params = {"b": "2", "a": "x y", "SignatureType": "", "A": "1"}
    assert canonical_query_string(params) == "A=1&SignatureType=&a=x%20y&b=2"


def test_canonical_query_string_of_nothing_is_empty() -> None:
    assert canonical_query_string({}) == ""


# --- RPC V1: published vectors ------------------------------------------------------------------

# VOD "Signature method" (doc-detail/44434): GetVideoPlayAuth. The doc's unsigned URL spells
# "TimeStamp" but its string-to-sign (and the published signature) use "Timestamp".
VOD_DOC_PARAMS = {
    "Timestamp": "2017-10-10T12:02:54Z",
    "Format": "JSON",
    "AccessKeyId": "testAccessKeyId",
    "Action": "GetVideoPlayAuth",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "8f8a035d-6496-4268-afd4-67c22837e38d",
    "Version": "2017-03-21",
    "SignatureVersion": "1.0",
    "VideoId": "5aed81b74ba84920be578cdfe004af4b",
}
VOD_DOC_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestAccessKeyId%26Action%3DGetVideoPlayAuth%26Format%3DJSON"
    "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D8f8a035d-6496-4268-afd4-67c22837e38d"
    "%26SignatureVersion%3D1.0%26Timestamp%3D2017-10-10T12%253A02%253A54Z%26Version%3D2017-03-21"
    "%26VideoId%3D5aed81b74ba84920be578cdfe004af4b"
)


def test_vod_doc_get_video_play_auth_string_to_sign() -> None:
    assert rpc_v1_string_to_sign("GET", VOD_DOC_PARAMS) == VOD_DOC_STRING_TO_SIGN


def test_vod_doc_get_video_play_auth_signature() -> None:
    assert rpc_v1_signature("GET", VOD_DOC_PARAMS, "testAccessKeySecret") == "Ibgh7y8Vp47LBuAsf5Xhi1SvDss="


def test_vod_doc_vector_through_common_params() -> None:
    params = rpc_v1_common_params(
        action="GetVideoPlayAuth",
        version="2017-03-21",
        access_key_id="testAccessKeyId",
        timestamp=datetime(2017, 10, 10, 12, 2, 54, tzinfo=timezone.utc),
        nonce="8f8a035d-6496-4268-afd4-67c22837e38d",
        security_token=None,
    )
    params["VideoId"] = "5aed81b74ba84920be578cdfe004af4b"
    assert params == VOD_DOC_PARAMS
    assert rpc_v1_signature("GET", params, "testAccessKeySecret") == "Ibgh7y8Vp47LBuAsf5Xhi1SvDss="


# Generic RPC doc (ECS DescribeRegions, testid / testsecret); two revisions of the page.
ECS_DOC_PARAMS = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}


def test_ecs_doc_describe_regions_timestamp_revision() -> None:
    assert rpc_v1_string_to_sign("GET", ECS_DOC_PARAMS) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
        "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
        "%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
    )
    assert rpc_v1_signature("GET", ECS_DOC_PARAMS, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_ecs_doc_describe_regions_timestamp_spelled_with_capital_s() -> None:
    params = {("TimeStamp" if k == "Timestamp" else k): v for k, v in ECS_DOC_PARAMS.items()}
    assert rpc_v1_signature("GET", params, "testsecret") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def test_method_is_part_of_the_v1_string_to_sign() -> None:
    # The POST value is the one independent implementations publish next to the doc's GET value.
    assert rpc_v1_signature("POST", ECS_DOC_PARAMS, "testsecret") == "MxbnVAM4w6sft9xjVpe/GCKueuk="
    assert rpc_v1_signature("post", ECS_DOC_PARAMS, "testsecret") == "MxbnVAM4w6sft9xjVpe/GCKueuk="


def test_signature_parameter_is_never_signed() -> None:
    with_sig = {**ECS_DOC_PARAMS, "Signature": "anything"}
    assert rpc_v1_signature("GET", with_sig, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_v1_key_has_the_trailing_ampersand() -> None:
    import base64
    import hmac

    sts = rpc_v1_string_to_sign("GET", ECS_DOC_PARAMS).encode()
    without = base64.b64encode(hmac.new(b"testsecret", sts, hashlib.sha1).digest()).decode()
    assert rpc_v1_signature("GET", ECS_DOC_PARAMS, "testsecret") != without


# --- RPC V1: worked example v1-createuploadvideo-get-minimal -----------------------------------

WORKED_CANONICAL = (
    "AccessKeyId=LTAI5tFakeKeyIdForVectors&Action=CreateUploadVideo&FileName=upload%20test.mp4"
    "&Format=JSON&SignatureMethod=HMAC-SHA1&SignatureNonce=3a7f1c2e9b8d4f6a8c0e2b4d6f8a0c1e"
    "&SignatureVersion=1.0&Timestamp=2026-01-15T08%3A30%3A00Z&Title=Upload%20Test&Version=2017-03-21"
)


def _worked_params() -> dict[str, str]:
    params = rpc_v1_common_params(
        action="CreateUploadVideo",
        version="2017-03-21",
        access_key_id="LTAI5tFakeKeyIdForVectors",
        timestamp=datetime(2026, 1, 15, 8, 30, 0, tzinfo=timezone.utc),
        nonce="3a7f1c2e9b8d4f6a8c0e2b4d6f8a0c1e",
        security_token=None,
    )
    params.update({"Title": "Upload Test", "FileName": "upload test.mp4"})
    return params


def test_worked_example_canonical_query() -> None:
    assert canonical_query_string(_worked_params()) == WORKED_CANONICAL


def test_worked_example_string_to_sign() -> None:
    sts = rpc_v1_string_to_sign("GET", _worked_params())
    assert sts.startswith(
        "GET&%2F&AccessKeyId%3DLTAI5tFakeKeyIdForVectors%26Action%3DCreateUploadVideo"
        "%26FileName%3Dupload%2520test.mp4%26"
    )
    assert sts.endswith("%26Title%3DUpload%2520Test%26Version%3D2017-03-21")
    assert sts == "GET&%2F&" + percent_encode(WORKED_CANONICAL)


def test_worked_example_signature() -> None:
    signature = rpc_v1_signature("GET", _worked_params(), "FakeSecretForVectorsOnly0123456789ab")
    assert signature == "d1DaRe8BFYZnFrH1MVk0FSKRbH0="


def test_v1_sts_token_is_a_signed_query_parameter() -> None:
    params = rpc_v1_common_params(
        action="CreateUploadVideo",
        version="2017-03-21",
        access_key_id="STS.abc",
        timestamp=datetime(2026, 1, 15, 8, 30, 0, tzinfo=timezone.utc),
        nonce="n",
        security_token="CAIS+token/==",
    )
    assert params["SecurityToken"] == "CAIS+token/=="
    assert "SecurityToken%3DCAIS%252Btoken%252F%253D%253D" in rpc_v1_string_to_sign("POST", params)
    without = {k: v for k, v in params.items() if k != "SecurityToken"}
    assert rpc_v1_signature("POST", params, "s") != rpc_v1_signature("POST", without, "s")


# --- V3: the RunInstances anchor of "V3 request structure and signature" ------------------------

RUN_INSTANCES_QUERY = {
    "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
    "RegionId": "cn-shanghai",
}
RUN_INSTANCES_HEADERS = {
    "host": "ecs.cn-shanghai.aliyuncs.com",
    "x-acs-action": "RunInstances",
    "x-acs-version": "2014-05-26",
    "x-acs-date": "2023-10-26T10:22:32Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": EMPTY_SHA256,
}
DOC_CREDENTIALS = Credentials("YourAccessKeyId", "YourAccessKeySecret")
RUN_INSTANCES_SIGNATURE = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
RUN_INSTANCES_SIGNED_HEADERS = (
    "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
)


def test_empty_payload_hash() -> None:
    assert EMPTY_SHA256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_v3_doc_canonical_request() -> None:
    canonical, signed = v3_canonical_request(
        "POST", "/", RUN_INSTANCES_QUERY, RUN_INSTANCES_HEADERS, EMPTY_SHA256
    )
    assert signed == RUN_INSTANCES_SIGNED_HEADERS
    assert canonical == (
        "POST\n/\n"
        "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n"
        "host:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\n"
        f"x-acs-content-sha256:{EMPTY_SHA256}\nx-acs-date:2023-10-26T10:22:32Z\n"
        "x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\nx-acs-version:2014-05-26\n"
        f"\n{RUN_INSTANCES_SIGNED_HEADERS}\n{EMPTY_SHA256}"
    )
    assert (
        hashlib.sha256(canonical.encode()).hexdigest()
        == "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    )


def test_v3_doc_authorization() -> None:
    auth = v3_authorization(
        method="POST",
        canonical_uri="/",
        query=RUN_INSTANCES_QUERY,
        headers=RUN_INSTANCES_HEADERS,
        body=b"",
        credentials=DOC_CREDENTIALS,
    )
    assert auth == (
        f"ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders={RUN_INSTANCES_SIGNED_HEADERS},"
        f"Signature={RUN_INSTANCES_SIGNATURE}"
    )


def test_v3_doc_vector_through_sign_headers() -> None:
    headers = v3_sign_headers(
        method="POST",
        host="ecs.cn-shanghai.aliyuncs.com",
        action="RunInstances",
        version="2014-05-26",
        query=RUN_INSTANCES_QUERY,
        body=b"",
        credentials=DOC_CREDENTIALS,
        timestamp=datetime(2023, 10, 26, 18, 22, 32, tzinfo=timezone(timedelta(hours=8))),
        nonce="3156853299f313e23d1673dc12e1703d",
    )
    assert headers["Authorization"].endswith(f"Signature={RUN_INSTANCES_SIGNATURE}")
    assert {k: v for k, v in headers.items() if k != "Authorization"} == RUN_INSTANCES_HEADERS


def test_v3_header_names_are_lowered_and_values_trimmed() -> None:
    shouty = {k.upper(): f"  {v} " for k, v in RUN_INSTANCES_HEADERS.items()}
    auth = v3_authorization(
        method="post",
        canonical_uri="/",
        query=RUN_INSTANCES_QUERY,
        headers=shouty,
        body=b"",
        credentials=DOC_CREDENTIALS,
    )
    assert auth.endswith(RUN_INSTANCES_SIGNATURE)


def test_v3_sts_token_and_content_type_are_signed_headers() -> None:
    headers = v3_sign_headers(
        method="POST",
        host="vod.cn-shanghai.aliyuncs.com",
        action="CreateUploadVideo",
        version="2017-03-21",
        query={"Title": "t"},
        body=b"a=1",
        credentials=Credentials("STS.id", "secret", "CAIS-token"),
        timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc),
        nonce="n",
        content_type="application/x-www-form-urlencoded",
    )
    assert headers["x-acs-security-token"] == "CAIS-token"
    assert headers["x-acs-content-sha256"] == hashlib.sha256(b"a=1").hexdigest()
    assert (
        "SignedHeaders=content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;"
        "x-acs-security-token;x-acs-signature-nonce;x-acs-version," in headers["Authorization"]
    )


def test_v3_refuses_to_sign_authorization_or_duplicate_headers() -> None:
    with pytest.raises(ValueError, match="Authorization"):
        v3_canonical_request("POST", "/", {}, {"Authorization": "x"}, EMPTY_SHA256)
    with pytest.raises(ValueError, match="twice"):
        v3_canonical_request("POST", "/", {}, {"Host": "a", "host": "b"}, EMPTY_SHA256)


# --- helpers ------------------------------------------------------------------------------------


def test_credentials_repr_hides_secret_and_token() -> None:
    creds = Credentials("LTAIid", "SuperSecretValue", "TokenValue123")
    text = repr(creds) + str(creds)
    assert "LTAIid" in text
    assert "SuperSecretValue" not in text
    assert "TokenValue123" not in text


def test_format_timestamp_is_utc_seconds_with_z() -> None:
    assert format_timestamp(datetime(2026, 1, 15, 8, 30, 0, 999_999)) == "2026-01-15T08:30:00Z"
    cst = timezone(timedelta(hours=8))
    assert format_timestamp(datetime(2026, 1, 15, 16, 30, tzinfo=cst)) == "2026-01-15T08:30:00Z"


def test_new_nonce_is_32_hex_and_fresh() -> None:
    a, b = new_nonce(), new_nonce()
    assert len(a) == 32 and int(a, 16) >= 0
    assert a != b


def test_importing_signing_does_not_import_httpx() -> None:
    code = "import sys, shared.signing; sys.exit(1 if 'httpx' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- VOD callbacks ------------------------------------------------------------------------------

DOC_URL = "https://www.example.com/your/callback"
DOC_TS = "1519375990"
DOC_NOW = 1519375990.0


def _headers(url: str = DOC_URL, ts: str = DOC_TS, key: str = "test123") -> dict[str, str]:
    return {"X-VOD-TIMESTAMP": ts, "X-VOD-SIGNATURE": callback_signature(url, ts, key)}


def test_callback_doc_example() -> None:
    assert callback_signature(DOC_URL, DOC_TS, "test123") == "c72b60894140fa98920f1279219b7ed4"


def test_callback_doc_example_zh_key_spelling() -> None:
    # The Chinese page prints the key as "Test123" with the same masked value; only "test123" matches.
    assert callback_signature(DOC_URL, DOC_TS, "Test123") == "c587b80d2d0ede300e8967937da7219b"


def test_verify_callback_accepts_the_doc_example_and_returns_the_timestamp() -> None:
    assert verify_callback(_headers(), url=DOC_URL, keys=["test123"], now=DOC_NOW) == 1519375990


@pytest.mark.parametrize(
    "url",
    [
        "https://1234567890123456.cn-shanghai.fc.aliyuncs.com/2016-08-15/proxy/vodfc/callback/",
        "https://example.com/vod/callback/?tenant=a&x=1",
        "http://203.0.113.7:8080/callback",
    ],
    ids=["fc-http-trigger", "url-with-query-trailing-slash", "http-port"],
)
def test_verify_callback_uses_the_url_verbatim(url: str) -> None:
    headers = _headers(url=url, key="Key123abc")
    assert verify_callback(headers, url=url, keys=["Key123abc"], now=DOC_NOW) == 1519375990
    # Any other spelling of the "same" URL is a different signed string.
    for variant in (url.rstrip("/") if url.endswith("/") else url + "/", url.upper(), url + "?"):
        with pytest.raises(errors.InvalidSignature):
            verify_callback(headers, url=variant, keys=["Key123abc"], now=DOC_NOW)


@pytest.mark.parametrize("case", ["lower", "upper", "mixed"])
def test_callback_header_names_are_case_insensitive(case: str) -> None:
    headers = _headers()
    transforms: dict[str, Callable[[str], str]] = {
        "lower": str.lower,
        "upper": str.upper,
        "mixed": lambda name: "x-Vod-" + name[6:].title(),
    }
    transform = transforms[case]
    renamed = {transform(k): v for k, v in headers.items()}
    assert verify_callback(renamed, url=DOC_URL, keys=["test123"], now=DOC_NOW) == 1519375990


def test_callback_signature_hex_case_does_not_matter() -> None:
    headers = _headers()
    headers["X-VOD-SIGNATURE"] = headers["X-VOD-SIGNATURE"].upper()
    assert verify_callback(headers, url=DOC_URL, keys=["test123"], now=DOC_NOW) == 1519375990


def test_callback_previous_key_is_accepted_during_rotation() -> None:
    headers = _headers(key="OldKey123")
    assert verify_callback(headers, url=DOC_URL, keys=["NewKey456", "OldKey123"], now=DOC_NOW) == 1519375990


def test_callback_body_is_not_signed() -> None:
    # The verifier takes no body at all: any body with valid headers is authentic by VOD's scheme.
    assert verify_callback(_headers(), url=DOC_URL, keys=["test123"], now=DOC_NOW) == 1519375990


def test_callback_window_edges_are_inclusive() -> None:
    assert verify_callback(_headers(), url=DOC_URL, keys=["test123"], now=DOC_NOW + 300) == 1519375990
    assert verify_callback(_headers(), url=DOC_URL, keys=["test123"], now=DOC_NOW - 300) == 1519375990


def _rejects(headers: dict[str, str], *, url: str = DOC_URL, now: float = DOC_NOW, match: str) -> str:
    with pytest.raises(errors.InvalidSignature, match=match) as info:
        verify_callback(headers, url=url, keys=["test123"], now=now)
    assert info.value.status == 401
    assert info.value.code == "InvalidSignature"
    return info.value.message


def test_callback_trailing_slash_mismatch_is_rejected() -> None:
    _rejects(_headers(url=DOC_URL + "/"), match="does not match")


def test_callback_tampered_timestamp_is_rejected() -> None:
    headers = _headers()
    headers["X-VOD-TIMESTAMP"] = "1519375991"
    _rejects(headers, match="does not match")


def test_callback_stale_timestamp_is_rejected() -> None:
    _rejects(_headers(), now=DOC_NOW + 301, match="300 seconds")


def test_callback_future_timestamp_is_rejected() -> None:
    _rejects(_headers(), now=DOC_NOW - 301, match="300 seconds")


def test_callback_window_is_configurable() -> None:
    assert verify_callback(
        _headers(), url=DOC_URL, keys=["test123"], now=DOC_NOW + 3000, max_skew_seconds=3600
    )
    with pytest.raises(errors.InvalidSignature):
        verify_callback(_headers(), url=DOC_URL, keys=["test123"], now=DOC_NOW + 2, max_skew_seconds=1)


@pytest.mark.parametrize("missing", ["X-VOD-TIMESTAMP", "X-VOD-SIGNATURE"])
def test_callback_missing_header_is_rejected(missing: str) -> None:
    headers = _headers()
    del headers[missing]
    message = _rejects(headers, match="missing")
    assert missing in message


def test_callback_empty_headers_are_rejected() -> None:
    _rejects({}, match="missing")
    _rejects({"X-VOD-TIMESTAMP": " ", "X-VOD-SIGNATURE": "x"}, match="missing")


@pytest.mark.parametrize(
    "ts",
    [
        "abc",
        "1519375990.0",
        "-1519375990",
        "+1519375990",
        "1e9",
        "1519375990000",
        "１５１９３７５９９０",
        "0x5a",
    ],
)
def test_callback_non_numeric_timestamp_is_rejected(ts: str) -> None:
    headers = {"X-VOD-TIMESTAMP": ts, "X-VOD-SIGNATURE": callback_signature(DOC_URL, ts, "test123")}
    _rejects(headers, match="whole seconds")


def test_callback_wrong_key_is_rejected() -> None:
    _rejects(_headers(key="other-key"), match="does not match")


def test_callback_garbage_signature_is_rejected() -> None:
    headers = _headers()
    headers["X-VOD-SIGNATURE"] = "zz€€ not hex"
    _rejects(headers, match="does not match")


def test_callback_volcengine_body_variant_is_rejected() -> None:
    # BytePlus/Volcengine sign URL|ts|key|base64(body) under the same header names; not Alibaba's scheme.
    import base64

    body = b'{"EventType":"FileUploadComplete"}'
    volc = hashlib.md5(
        f"{DOC_URL}|{DOC_TS}|test123|{base64.b64encode(body).decode()}".encode(), usedforsecurity=False
    ).hexdigest()
    _rejects({"X-VOD-TIMESTAMP": DOC_TS, "X-VOD-SIGNATURE": volc}, match="does not match")


def test_callback_errors_never_echo_the_expected_signature_or_key() -> None:
    expected = callback_signature(DOC_URL, DOC_TS, "test123")
    for headers, now in [
        (_headers(key="wrong"), DOC_NOW),
        (_headers(), DOC_NOW + 10_000),
        ({"X-VOD-TIMESTAMP": DOC_TS}, DOC_NOW),
    ]:
        with pytest.raises(errors.InvalidSignature) as info:
            verify_callback(headers, url=DOC_URL, keys=["test123"], now=now)
        rendered = str(errors.render(info.value, "req")) + repr(info.value)
        assert expected not in rendered
        assert "test123" not in rendered


def test_callback_without_configured_keys_is_a_server_error() -> None:
    with pytest.raises(errors.VodfcError) as info:
        verify_callback(_headers(), url=DOC_URL, keys=[], now=DOC_NOW)
    assert not isinstance(info.value, errors.InvalidSignature)
    assert info.value.status == 500
