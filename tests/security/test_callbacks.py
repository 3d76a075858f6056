"""Attacks on ``POST /callbacks/vod``.

VOD's signature is ``md5(URL|timestamp|key)``: it does not cover the body. What a valid header
pair buys an attacker who captured one is bounded by the timestamp window, the owner binding in
``Extend``, the dedupe keys and, for final states, confirmation with VOD (GetVideoInfo).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest

from shared.services.deps import get_deps, set_deps
from tests.functional.conftest import CALLBACK_KEY, CALLBACK_URL, Stack, load_event, reset_instance_state

T0 = 1_795_600_800  # the services' clock is pinned here


def pin_clock() -> None:
    set_deps(replace(get_deps(), clock=lambda: datetime.fromtimestamp(T0, timezone.utc)))


@pytest.fixture
def pinned(stack: Stack) -> Stack:
    pin_clock()
    return stack


def sign(ts: int | str, *, key: str = CALLBACK_KEY, url: str = CALLBACK_URL) -> str:
    return hashlib.md5(f"{url}|{ts}|{key}".encode()).hexdigest()


def send(stack: Stack, body: dict[str, Any] | str, headers: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    event = load_event("http/vod_callback.json")
    event["headers"] = {"Content-Type": "application/json", **headers}
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    status, answer, _ = stack.invoke("vod_callback", event)
    return status, answer


def signed(stack: Stack, body: dict[str, Any] | str, ts: int = T0, **kw: str) -> tuple[int, dict[str, Any]]:
    return send(stack, body, {"X-VOD-TIMESTAMP": str(ts), "X-VOD-SIGNATURE": sign(ts, **kw)})


def status_of(stack: Stack, video_id: str, owner: str = "alice") -> str:
    status: str = stack.http("upload_credentials", "GET", f"/uploads/{video_id}", owner=owner)[1]["Status"]
    return status


def refused(answer: tuple[int, dict[str, Any]], code: str = "InvalidSignature") -> None:
    status, body = answer
    assert status == 401 and body["Code"] == code, body
    assert CALLBACK_KEY not in json.dumps(body)


# --- signature and timestamp ---------------------------------------------------------------------
def test_a_forged_signature_is_refused(pinned: Stack) -> None:
    video_id = pinned.create()["VideoId"]
    event = pinned.vod_event("FileUploadComplete", video_id)
    for bad in (
        "0" * 32,
        sign(T0, key="GuessedKey123"),
        sign(T0)[:-1],
        sign(T0) + "0",
        hashlib.sha256(f"{CALLBACK_URL}|{T0}|{CALLBACK_KEY}".encode()).hexdigest(),
        hashlib.md5(f"{CALLBACK_URL}{T0}{CALLBACK_KEY}".encode()).hexdigest(),  # no separators
        hashlib.md5(f"{T0}|{CALLBACK_URL}|{CALLBACK_KEY}".encode()).hexdigest(),  # other order
        "",
        "ｆ" * 32,
    ):
        refused(send(pinned, event, {"X-VOD-TIMESTAMP": str(T0), "X-VOD-SIGNATURE": bad}))
    assert status_of(pinned, video_id) == "created"


def test_upper_case_hex_of_the_genuine_signature_is_the_same_signature(pinned: Stack) -> None:
    video_id = pinned.create()["VideoId"]
    event = pinned.vod_event("FileUploadComplete", video_id)
    status, _ = send(pinned, event, {"X-VOD-TIMESTAMP": str(T0), "X-VOD-SIGNATURE": sign(T0).upper()})
    assert status == 200


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-300, True), (-301, False), (300, True), (301, False), (-86_400, False), (10**9, False)],
    ids=["window-start", "stale", "window-end", "future", "a-day-old", "far-future"],
)
def test_the_timestamp_window_is_exact_both_ways(pinned: Stack, offset: int, accepted: bool) -> None:
    video_id = pinned.create()["VideoId"]
    answer = signed(pinned, pinned.vod_event("FileUploadComplete", video_id), ts=T0 + offset)
    if accepted:
        assert answer[0] == 200, answer
    else:
        refused(answer)
        assert status_of(pinned, video_id) == "created"


@pytest.mark.parametrize(
    "ts",
    [str(T0 * 1000), f"{T0}.0", f"+{T0}", f"-{T0}", "1e9", f"{T0}\x00", "٣" * 10, "", " ", "0x6A", "9" * 40],
)
def test_malformed_timestamps_are_refused(pinned: Stack, ts: str) -> None:
    refused(send(pinned, {"EventType": "X"}, {"X-VOD-TIMESTAMP": ts, "X-VOD-SIGNATURE": sign(ts)}))


def test_a_replayed_callback_is_a_duplicate_and_changes_nothing(pinned: Stack) -> None:
    video_id = pinned.create()["VideoId"]
    event = pinned.vod_event("FileUploadComplete", video_id)
    assert signed(pinned, event)[1]["Result"] == "applied"
    for ts in (T0, T0 + 5, T0 + 299):  # the same request again, and VOD-style retries
        status, ack = signed(pinned, event, ts=ts)
        assert status == 200 and ack["Result"] == "duplicate"
    # a captured request replayed after the window is refused outright
    refused(signed(pinned, event, ts=T0 - 600))
    assert status_of(pinned, video_id) == "uploaded"


def test_the_previous_key_works_while_configured_and_not_after(
    pinned: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLBACK_AUTH_KEY", "NewKey2026abc")
    monkeypatch.setenv("CALLBACK_AUTH_KEY_PREVIOUS", CALLBACK_KEY)
    reset_instance_state()
    pin_clock()
    video_id = pinned.create()["VideoId"]
    assert signed(pinned, pinned.vod_event("FileUploadComplete", video_id), key=CALLBACK_KEY)[0] == 200
    assert (
        signed(pinned, pinned.vod_event("StreamTranscodeComplete", video_id), key="NewKey2026abc")[0] == 200
    )

    monkeypatch.delenv("CALLBACK_AUTH_KEY_PREVIOUS")  # rotation finished
    reset_instance_state()
    pin_clock()
    refused(signed(pinned, pinned.vod_event("TranscodeComplete", video_id), key=CALLBACK_KEY))
    assert status_of(pinned, video_id) == "processing"


@pytest.mark.parametrize(
    "url",
    [
        CALLBACK_URL + "/",
        CALLBACK_URL.replace("https://", "http://"),
        CALLBACK_URL.replace("uploads.example.com", "UPLOADS.example.com"),
        CALLBACK_URL + "?x=1",
        "https://attacker.example/callbacks/vod",
        "https://uploads.example.com:443/callbacks/vod",
    ],
)
def test_a_signature_for_another_url_is_refused(pinned: Stack, url: str) -> None:
    video_id = pinned.create()["VideoId"]
    refused(signed(pinned, pinned.vod_event("FileUploadComplete", video_id), url=url))


def test_volcengine_body_including_variant_is_refused(pinned: Stack) -> None:
    """BytePlus/Volcengine VOD use the same header names with ``md5(URL|ts|key|base64(body))``."""
    video_id = pinned.create()["VideoId"]
    body = json.dumps(pinned.vod_event("FileUploadComplete", video_id))
    content = base64.b64encode(body.encode()).decode()
    volc = hashlib.md5(f"{CALLBACK_URL}|{T0}|{CALLBACK_KEY}|{content}".encode()).hexdigest()
    refused(send(pinned, body, {"X-VOD-TIMESTAMP": str(T0), "X-VOD-SIGNATURE": volc}))
    assert status_of(pinned, video_id) == "created"


def test_duplicated_signature_headers_are_refused(pinned: Stack) -> None:
    video_id = pinned.create()["VideoId"]
    event = pinned.vod_event("FileUploadComplete", video_id)
    refused(send(pinned, event, {"X-VOD-TIMESTAMP": str(T0), "X-VOD-SIGNATURE": [sign(T0), "0" * 32]}))
    refused(send(pinned, event, {"X-VOD-TIMESTAMP": [str(T0), str(T0)], "X-VOD-SIGNATURE": sign(T0)}))
    refused(
        send(
            pinned,
            event,
            {"X-VOD-TIMESTAMP": str(T0), "X-VOD-SIGNATURE": sign(T0), "x-vod-signature": "0" * 32},
        )
    )


def test_callbacks_are_refused_when_not_configured(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLBACK_AUTH_KEY")
    reset_instance_state()
    status, body = signed(stack, {"EventType": "FileUploadComplete", "VideoId": "v"}, ts=T0)
    assert status == 503 and body["Code"] == "CallbackNotConfigured"


# --- a genuine header pair with another body ----------------------------------------------------
def test_a_tampered_body_claiming_ready_is_caught_by_confirming_with_vod(pinned: Stack) -> None:
    video_id = pinned.create()["VideoId"]  # VOD: still Uploading, nothing arrived
    forged = pinned.vod_event("TranscodeComplete", video_id)
    status, _ = signed(pinned, forged)
    assert status == 200
    assert status_of(pinned, video_id) == "created"  # VOD said Uploading: nothing moved
    assert pinned.vod.action_calls("GetVideoInfo") == [{"VideoId": video_id}]


def test_a_tampered_body_claiming_failure_gets_vods_real_status(pinned: Stack) -> None:
    video_id = pinned.create()["VideoId"]
    pinned.vod.videos[video_id].update(Status="Normal", Duration="12.5")
    forged = pinned.vod_event("TranscodeComplete", video_id, Status="fail", ErrorMessage="forged")
    assert signed(pinned, forged)[0] == 200
    record = pinned.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]
    assert record["Status"] == "ready" and record["Duration"] == 12.5


def test_a_tampered_body_without_the_binding_still_needs_vods_confirmation(pinned: Stack) -> None:
    video_id = pinned.create()["VideoId"]
    forged = pinned.vod_event("VideoUploadComplete", video_id)
    forged.pop("Extend", None)  # no binding to check
    assert signed(pinned, forged)[0] == 200
    assert status_of(pinned, video_id) == "created"


def test_another_owners_binding_is_refused(pinned: Stack) -> None:
    mine = pinned.create(owner="alice")["VideoId"]
    theirs = pinned.create(owner="bob")["VideoId"]
    event = pinned.vod_event("FileUploadComplete", mine)
    event["Extend"] = pinned.vod_event("FileUploadComplete", theirs)["Extend"]
    refused(signed(pinned, event), code="InvalidSignature.Binding")
    # a hand-made binding (the HMAC key is server-side) is refused too
    extend = json.loads(event["Extend"])
    extend["vodfc_sig"] = base64.urlsafe_b64encode(b"\0" * 18).decode()
    event["Extend"] = json.dumps(extend)
    refused(signed(pinned, event), code="InvalidSignature.Binding")
    assert status_of(pinned, mine) == "created"


def test_confirmation_is_what_the_setting_switches_off(
    pinned: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``CALLBACK_CONFIRM_WITH_VOD=false`` trusts the body of any validly signed request."""
    monkeypatch.setenv("CALLBACK_CONFIRM_WITH_VOD", "false")
    reset_instance_state()
    pin_clock()
    video_id = pinned.create()["VideoId"]
    assert signed(pinned, pinned.vod_event("TranscodeComplete", video_id))[0] == 200
    assert status_of(pinned, video_id) == "ready"
    assert pinned.vod.action_calls("GetVideoInfo") == []


def test_events_for_unknown_media_are_kept_apart_and_move_nothing(pinned: Stack) -> None:
    video_id = pinned.create()["VideoId"]
    for target in ("0" * 32, video_id.upper(), f"{video_id},{video_id}", "../" + video_id):
        status, ack = signed(pinned, pinned.vod_event("FileUploadComplete", target))
        assert status in (200, 400), ack
        if status == 200:
            assert ack["Result"] in ("orphan", "ignored", "invalid"), ack
    assert status_of(pinned, video_id) == "created"
