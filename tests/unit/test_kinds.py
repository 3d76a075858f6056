"""shared/services/kinds.py: each media kind's VOD operations, one table (strict respx)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from shared import errors
from shared.services import kinds
from shared.settings import Settings
from shared.signing import Credentials
from shared.vod import VodClient

ENDPOINT = "https://vod.cn-shanghai.aliyuncs.com/"


@pytest.fixture
def vod() -> Iterator[tuple[VodClient, respx.MockRouter]]:
    settings = Settings(vod_max_attempts=1)
    client = VodClient(settings, credentials=lambda: Credentials("LTAIkinds", "kinds-secret", None))
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as router:
        yield client, router
    client.close()


def _route(router: respx.MockRouter, action: str, body: dict[str, Any], status: int = 200) -> respx.Route:
    return router.post(ENDPOINT, headers={"x-acs-action": action}).respond(
        status, json={"RequestId": "r", **body}
    )


def test_each_kind_has_its_own_size_cap() -> None:
    settings = Settings(max_file_size=3, max_image_size=2, max_attached_media_size=1)
    assert [kinds.max_size(settings, k) for k in ("video", "image", "attached")] == [3, 2, 1]


@pytest.mark.parametrize(
    ("kind", "action", "body", "found"),
    [
        (
            "video",
            "GetVideoInfos",
            {"VideoList": [{"VideoId": "a", "Status": "Blocked", "Size": "9", "Duration": "1.5"}]},
            kinds.VodMedia(
                "a",
                "Blocked",
                "failed",
                {"size": 9, "duration": 1.5, "error": "Blocked: the video did not pass review"},
            ),
        ),
        (
            "image",
            "GetImageInfos",
            {"ImageInfo": [{"ImageId": "a", "Status": "Normal", "Mezzanine": {"FileSize": "7"}}]},
            kinds.VodMedia("a", "Normal", "ready", {"size": 7}),
        ),
        (
            "attached",
            "GetAttachedMediaInfo",
            {"AttachedMediaList": [{"MediaId": "a", "Status": "Uploading"}]},
            kinds.VodMedia("a", "Uploading", "created", {}),
        ),
    ],
)
def test_look_up_asks_the_kinds_operation_and_speaks_our_statuses(
    vod: tuple[VodClient, respx.MockRouter],
    kind: str,
    action: str,
    body: dict[str, Any],
    found: kinds.VodMedia,
) -> None:
    client, router = vod
    missing_key = {"video": "NonExistVideoIds", "image": "NonExistImageIds", "attached": "NonExistMediaIds"}[
        kind
    ]
    route = _route(router, action, {**body, missing_key: ["b"]})
    assert kinds.look_up(client, kind, ["a", "b"]) == ([found], ["b"])
    assert route.call_count == 1


def test_a_status_the_kind_does_not_have_reads_as_unknown(vod: tuple[VodClient, respx.MockRouter]) -> None:
    client, router = vod
    _route(router, "GetImageInfo", {"ImageInfo": {"ImageId": "a", "Status": "Transcoding"}})
    media = kinds.look_up_one(client, "image", "a", deadline_seconds=1)
    assert (media.vod_status, media.status) == ("Transcoding", None)


def test_one_attached_media_vod_does_not_have_is_not_found(vod: tuple[VodClient, respx.MockRouter]) -> None:
    client, router = vod
    _route(router, "GetAttachedMediaInfo", {"AttachedMediaList": [], "NonExistMediaIds": ["a"]})
    with pytest.raises(errors.NotFound):
        kinds.look_up_one(client, "attached", "a", deadline_seconds=1)


def test_stored_size_is_vods_for_videos_and_images_and_the_claim_for_attached_media(
    vod: tuple[VodClient, respx.MockRouter],
) -> None:
    client, router = vod
    _route(router, "GetMezzanineInfo", {"Mezzanine": {"VideoId": "v", "Size": "11"}})
    _route(
        router,
        "GetImageInfo",
        {"ImageInfo": {"ImageId": "i", "Status": "Normal", "Mezzanine": {"FileSize": "12"}}},
    )
    attached = router.post(ENDPOINT, headers={"x-acs-action": "GetAttachedMediaInfo"}).mock(
        side_effect=[
            httpx.Response(200, json={"AttachedMediaList": [{"MediaId": "m", "Status": "Normal"}]}),
            httpx.Response(200, json={"AttachedMediaList": [{"MediaId": "m", "Status": "Uploading"}]}),
        ]
    )
    assert kinds.stored_size(client, "video", "v", claimed=1, deadline_seconds=1) == 11
    assert kinds.stored_size(client, "image", "i", claimed=1, deadline_seconds=1) == 12
    assert kinds.stored_size(client, "attached", "m", claimed=13, deadline_seconds=1) == 13
    # not arrived yet: nothing confirms the claim
    assert kinds.stored_size(client, "attached", "m", claimed=13, deadline_seconds=1) is None
    assert attached.call_count == 2


@pytest.mark.parametrize(
    ("kind", "action", "params"),
    [
        ("video", "DeleteVideo", {"VideoIds": "a,b"}),
        ("image", "DeleteImage", {"DeleteImageType": "ImageId", "ImageIds": "a,b"}),
        ("attached", "DeleteAttachedMedia", {"MediaIds": "a,b"}),
    ],
)
def test_delete_uses_the_kinds_operation(
    vod: tuple[VodClient, respx.MockRouter], kind: str, action: str, params: dict[str, str]
) -> None:
    client, router = vod
    route = _route(router, action, {})
    kinds.delete(client, kind, ["a", "b"])
    assert dict(route.calls.last.request.url.params) == params
