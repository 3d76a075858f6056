"""shared/events.py: every sample in events/vod parses; VOD's quirks are tolerated; dedupe keys."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ForwardRef, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import errors
from shared.events import (
    EVENT_TYPES,
    DeleteMediaComplete,
    FileUploadComplete,
    GenericEvent,
    ImageUploadComplete,
    StreamTranscodeComplete,
    TranscodeComplete,
    VideoAnalysisComplete,
    VodEvent,
    event_model,
    parse_event,
)
from shared.vod_events_more import (
    AIMediaAuditComplete,
    AIMediaDNAComplete,
    AIVideoTagComplete,
    DynamicImageComplete,
    MediaBaseChangeComplete,
    SnapshotComplete,
    UploadByURLComplete,
)

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "vod"
DROP = object()  # sentinel: remove the key

# The reference's catalogue (D.3) plus VideoUploadComplete from the CreateUploadVideo page.
CATALOGUE = {
    "FileUploadComplete",
    "ImageUploadComplete",
    "AttachedMediaUploadComplete",
    "StreamTranscodeComplete",
    "TranscodeComplete",
    "SnapshotComplete",
    "DynamicImageComplete",
    "VideoAnalysisComplete",
    "AIMediaAuditComplete",
    "AIMediaDNAComplete",
    "AIVideoTagComplete",
    "CreateAuditComplete",
    "AddLiveRecordVideoComplete",
    "LiveRecordVideoComposeStart",
    "UploadByURLComplete",
    "DeleteMediaComplete",
    "MediaBaseChangeComplete",
    "ProduceMediaComplete",
    "VideoUploadComplete",
}


def sample(event_type: str, **changes: Any) -> dict[str, Any]:
    """The sample body of ``event_type``, with one or more fields changed (``DROP`` removes)."""
    data: dict[str, Any] = json.loads((SAMPLES / f"{event_type}.json").read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is DROP:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def body(event_type: str, **changes: Any) -> bytes:
    return json.dumps(sample(event_type, **changes)).encode()


def event(event_type: str, **changes: Any) -> Any:
    return parse_event(body(event_type, **changes))


# --- samples ----------------------------------------------------------------------------------


def test_every_catalogue_type_has_a_model_and_a_sample() -> None:
    assert set(EVENT_TYPES) == CATALOGUE
    assert {p.stem for p in SAMPLES.glob("*.json")} == CATALOGUE


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_each_sample_parses_to_its_class(event_type: str) -> None:
    parsed = parse_event((SAMPLES / f"{event_type}.json").read_bytes())
    assert type(parsed) is event_model(event_type)
    assert parsed.EventType == event_type
    assert parsed.media_id
    assert parsed.succeeded
    assert parsed.EventTime is not None and parsed.EventTime.tzinfo is not None
    assert parsed.dedupe_key().startswith(f"{event_type}|{parsed.media_id}|")


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_every_model_is_in_the_union(event_type: str) -> None:
    # The informational models are named in the union (their module is imported on demand).
    members = {m.__forward_arg__ if isinstance(m, ForwardRef) else m.__name__ for m in get_args(VodEvent)}
    assert event_model(event_type).__name__ == event_type and event_type in members


def test_a_lifecycle_event_does_not_import_the_informational_models() -> None:
    """Only an informational event builds the classes of :mod:`shared.vod_events_more`."""
    import subprocess
    import sys

    code = (
        "import sys; from shared.events import parse_event;"
        "parse_event(b'{\"EventType\": \"FileUploadComplete\", \"VideoId\": \"v1\"}');"
        "print('shared.vod_events_more' in sys.modules);"
        "parse_event(b'{\"EventType\": \"SnapshotComplete\", \"VideoId\": \"v1\"}');"
        "print('shared.vod_events_more' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_unknown_types_parse_as_generic() -> None:
    assert type(parse_event(b'{"EventType": "SomethingNew"}')) is GenericEvent
    assert type(parse_event(('{"EventType": "A' + "b" * 63 + '"}').encode())) is GenericEvent


@pytest.mark.parametrize(
    "event_type",
    ["", "somethingNew", "Something New", "Some<script>", "A" + "b" * 64, "Ünicode", "Type\u0000", "1Type"],
)
def test_an_event_type_that_is_no_name_is_refused(event_type: str) -> None:
    # it would be echoed in the answer, logged and stored in the inbox's key
    with pytest.raises((errors.MalformedBody, errors.InvalidParameter)):
        parse_event(json.dumps({"EventType": event_type}).encode())


def test_sample_fields() -> None:
    upload = event("FileUploadComplete")
    assert isinstance(upload, FileUploadComplete)
    assert upload.Size == 1439213
    assert upload.FileUrl and upload.FileUrl.startswith("http://")
    assert upload.extend_dict() == {"localId": "clip-0042", "test": "your extend data"}

    stream = event("StreamTranscodeComplete")
    assert isinstance(stream, StreamTranscodeComplete)
    assert (stream.Duration, stream.Fps, stream.Bitrate, stream.Size) == (15.0, 30.0, 925.0, 1815321)
    assert stream.Encrypt is False
    assert stream.job_id == stream.JobId

    done = event("TranscodeComplete")
    assert isinstance(done, TranscodeComplete)
    assert [s.Definition for s in done.StreamInfos] == ["LD", "SD"]
    assert [s.Duration for s in done.StreamInfos] == [15.0, 15.0]
    assert [s.Size for s in done.StreamInfos] == [1815321, 3090951]
    assert done.duration == 15.0
    assert done.streams_size == 1815321 + 3090951

    image = event("ImageUploadComplete")
    assert isinstance(image, ImageUploadComplete)
    assert image.media_id == image.ImageId
    assert image.EventTime == datetime(2024, 4, 10, 1, 37, 14, 627000, tzinfo=timezone.utc)

    analysis = event("VideoAnalysisComplete")
    assert isinstance(analysis, VideoAnalysisComplete)
    assert (analysis.Duration, analysis.Width, analysis.Height, analysis.Size) == (12.0, 630, 360, 1234568)

    by_url = event("UploadByURLComplete")
    assert isinstance(by_url, UploadByURLComplete)
    assert by_url.SourceURL and by_url.SourceURL.endswith(".mp4")  # documented key has a trailing space
    assert by_url.Size == 123456


def test_event_time_property_and_extend_dict_defaults() -> None:
    parsed = event("ProduceMediaComplete")
    assert parsed.event_time == parsed.EventTime
    assert parsed.extend_dict() == {}


# --- nested JSON delivered as strings --------------------------------------------------------


class TestNestedJson:
    def test_dynamic_image_job_info_string(self) -> None:
        parsed = event("DynamicImageComplete")
        assert isinstance(parsed, DynamicImageComplete)
        info = parsed.DynamicImageJobInfo
        assert info is not None
        assert (info.FileSize, info.Fps, info.Width, info.Height) == (1834831, 25.0, 200, 200)
        assert info.FileURL and info.FileURL.endswith(".gif")

    def test_dynamic_image_job_info_object_array_and_garbage(self) -> None:
        obj = {"JobId": "j", "Status": "success", "FileURL": "http://x/a.gif", "FileSize": 5}
        assert event("DynamicImageComplete", DynamicImageJobInfo=obj).DynamicImageJobInfo.FileSize == 5
        assert event("DynamicImageComplete", DynamicImageJobInfo=[obj]).DynamicImageJobInfo.JobId == "j"
        assert event("DynamicImageComplete", DynamicImageJobInfo="{not json").DynamicImageJobInfo is None
        assert event("DynamicImageComplete", DynamicImageJobInfo=DROP).DynamicImageJobInfo is None

    def test_media_content_values_parsed(self) -> None:
        parsed = event("MediaBaseChangeComplete")
        assert isinstance(parsed, MediaBaseChangeComplete)
        assert parsed.MediaContent["Description"] == {"OldValue": "OldDesc", "NewValue": "NewDesc"}
        assert parsed.MediaContent["CateId"] == {"NewValue": 1000023456}

    def test_media_content_as_a_string(self) -> None:
        content = json.dumps({"Title": json.dumps({"OldValue": "a", "NewValue": "b"}), "Tags": "plain"})
        parsed = event("MediaBaseChangeComplete", MediaContent=content)
        assert parsed.MediaContent == {"Title": {"OldValue": "a", "NewValue": "b"}, "Tags": "plain"}

    @pytest.mark.parametrize("event_type", ["AIMediaDNAComplete", "AIVideoTagComplete"])
    def test_ai_data_string_parsed(self, event_type: str) -> None:
        parsed = event(event_type)
        assert isinstance(parsed, (AIMediaDNAComplete, AIVideoTagComplete))
        assert isinstance(parsed.Data, dict)
        assert parsed.job_id == parsed.JobId

    def test_ai_data_object_and_plain_string(self) -> None:
        parsed = event("AIMediaAuditComplete")
        assert isinstance(parsed, AIMediaAuditComplete)
        assert parsed.Data["Suggestion"] == "review"
        assert event("AIMediaAuditComplete", Data="not json").Data == "not json"

    def test_stream_infos_as_a_string(self) -> None:
        streams = json.dumps(sample("TranscodeComplete")["StreamInfos"])
        parsed = event("TranscodeComplete", StreamInfos=streams)
        assert isinstance(parsed, TranscodeComplete)
        assert [s.Size for s in parsed.StreamInfos] == [1815321, 3090951]


# --- Extend -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"a":1}', {"a": 1}),
        ({"a": 1}, {"a": 1}),
        ("test data", "test data"),  # the docs' own sample: not JSON, kept raw
        ("[1,2]", "[1,2]"),  # JSON but not an object: kept raw
        ("{broken", "{broken"),
        (DROP, None),
        (None, None),
        (5, "5"),
    ],
)
def test_extend(value: Any, expected: Any) -> None:
    parsed = event("FileUploadComplete", Extend=value)
    assert parsed.Extend == expected
    assert parsed.extend_dict() == (expected if isinstance(expected, dict) else {})


# --- EventTime --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-20T07:49:17Z",
        "2024-05-20T07:49:17.000Z",
        "2024-05-20T07:49:17:000Z",
        "2024-05-20T15:49:17+08:00",
        "2024-05-20T07:49:17",
    ],
)
def test_event_time_formats_normalise_alike(text: str) -> None:
    parsed = event("FileUploadComplete", EventTime=text)
    assert parsed.EventTime == datetime(2024, 5, 20, 7, 49, 17, tzinfo=timezone.utc)
    assert parsed.dedupe_key() == event("FileUploadComplete").dedupe_key()


def test_event_time_milliseconds_distinguish() -> None:
    a = event("FileUploadComplete", EventTime="2024-05-20T07:49:17.123Z")
    b = event("FileUploadComplete", EventTime="2024-05-20T07:49:17:123Z")
    c = event("FileUploadComplete", EventTime="2024-05-20T07:49:17.124Z")
    assert a.EventTime == b.EventTime == datetime(2024, 5, 20, 7, 49, 17, 123000, tzinfo=timezone.utc)
    assert a.dedupe_key() == b.dedupe_key() != c.dedupe_key()


@pytest.mark.parametrize("value", ["yesterday", "2024-05-20", 1716191357, {"t": 1}])
def test_bad_event_time_is_invalid(value: Any) -> None:
    with pytest.raises(errors.InvalidParameter) as info:
        event("FileUploadComplete", EventTime=value)
    assert info.value.field == "EventTime"
    assert "Value error" not in info.value.message


@pytest.mark.parametrize("value", [DROP, None, ""])
def test_absent_event_time_is_tolerated(value: Any) -> None:
    parsed = event("FileUploadComplete", EventTime=value)
    assert parsed.EventTime is None


@settings(max_examples=100, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)
    ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
)
def test_any_time_in_any_vod_format_gives_one_key(moment: datetime) -> None:
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    ms = f"{moment.microsecond // 1000:03d}"
    keys = {
        event("FileUploadComplete", EventTime=text).dedupe_key()
        for text in (f"{base}.{ms}Z", f"{base}:{ms}Z") + ((f"{base}Z",) if ms == "000" else ())
    }
    assert len(keys) == 1


# --- tolerance --------------------------------------------------------------------------------


class TestTolerance:
    def test_numbers_as_strings(self) -> None:
        parsed = event("FileUploadComplete", Size="1439213")
        assert parsed.Size == 1439213
        assert event("StreamTranscodeComplete", Duration="15.5", Height="960").Duration == 15.5
        assert event("StreamTranscodeComplete", Height="960").Height == 960

    @pytest.mark.parametrize("value", ["", "big", None, True, [1]])
    def test_unparsable_numbers_read_as_none(self, value: Any) -> None:
        assert event("FileUploadComplete", Size=value).Size is None

    def test_numeric_ids_read_as_strings(self) -> None:
        assert event("FileUploadComplete", VideoId=12345).media_id == "12345"

    def test_keys_with_spaces_are_stripped_at_every_level(self) -> None:
        data = sample("TranscodeComplete")
        data["VideoId "] = data.pop("VideoId")
        data["StreamInfos"][0]["Size "] = data["StreamInfos"][0].pop("Size")
        data[" Status"] = data.pop("Status")
        parsed = parse_event(json.dumps(data).encode())
        assert isinstance(parsed, TranscodeComplete)
        assert parsed.media_id == sample("TranscodeComplete")["VideoId"]
        assert parsed.StreamInfos[0].Size == 1815321
        assert parsed.succeeded

    def test_event_type_with_spaces(self) -> None:
        assert type(event("FileUploadComplete", EventType=" FileUploadComplete ")) is FileUploadComplete

    def test_extra_fields_kept(self) -> None:
        parsed = event("FileUploadComplete", NewField={"x": 1}, Region="cn-shanghai")
        assert parsed.model_extra == {"NewField": {"x": 1}, "Region": "cn-shanghai"}

    @pytest.mark.parametrize(
        ("value", "expected"), [("false", False), ("true", True), ("maybe", None), (1, None)]
    )
    def test_boolean_strings(self, value: Any, expected: bool | None) -> None:
        assert event("StreamTranscodeComplete", Encrypt=value).Encrypt is expected

    def test_utf8_bom_and_str_input(self) -> None:
        raw = body("FileUploadComplete")
        assert parse_event(b"\xef\xbb\xbf" + raw).media_id == parse_event(raw.decode()).media_id

    def test_delete_job_ids_string_or_list(self) -> None:
        assert event("DeleteMediaComplete", JobIds="a, b").JobIds == ["a", "b"]
        assert event("DeleteMediaComplete", JobIds=["a"]).JobIds == ["a"]
        parsed = event("DeleteMediaComplete")
        assert isinstance(parsed, DeleteMediaComplete) and parsed.JobIds == []


# --- unknown and broken bodies ----------------------------------------------------------------


class TestUnknownAndBroken:
    def test_unknown_type_is_generic(self) -> None:
        parsed = parse_event(
            b'{"EventType":"BrandNewComplete","EventTime":"2024-05-20T07:49:17Z",'
            b'"MediaId":"m1","Status":"success","Foo":1}'
        )
        assert type(parsed) is GenericEvent
        assert parsed.media_id == "m1"
        assert parsed.model_extra == {"MediaId": "m1", "Foo": 1}
        assert parsed.dedupe_key().startswith("BrandNewComplete|m1|")

    def test_generic_without_ids_keys_on_the_body(self) -> None:
        a = parse_event(b'{"EventType":"X","A":1}')
        b = parse_event(b'{"EventType":"X","A":2}')
        assert a.dedupe_key() != b.dedupe_key()
        assert a.dedupe_key() == parse_event(b'{"A":1,"EventType":"X"}').dedupe_key()

    def test_known_type_without_its_id(self) -> None:
        with pytest.raises(errors.MissingParameter) as info:
            event("FileUploadComplete", VideoId=DROP)
        assert info.value.field == "VideoId"
        assert info.value.message == "FileUploadComplete event lacks VideoId."

    @pytest.mark.parametrize(
        ("event_type", "field"),
        [
            ("ImageUploadComplete", "ImageId"),
            ("AttachedMediaUploadComplete", "AttachedMediaId"),
            ("AIMediaAuditComplete", "MediaId"),
            ("DeleteMediaComplete", "MediaId"),
            ("TranscodeComplete", "VideoId"),
            ("UploadByURLComplete", "JobId"),
        ],
    )
    def test_each_kind_needs_its_id(self, event_type: str, field: str) -> None:
        with pytest.raises(errors.MissingParameter) as info:
            event(event_type, **{field: DROP})
        assert info.value.field == field

    @pytest.mark.parametrize("value", ["", {"a": 1}, ["v"]])
    def test_invalid_id(self, value: Any) -> None:
        with pytest.raises(errors.InvalidParameter) as info:
            event("FileUploadComplete", VideoId=value)
        assert info.value.field == "VideoId"
        assert "pydantic" not in info.value.message

    def test_failed_url_pull_has_no_video_id(self) -> None:
        parsed = event(
            "UploadByURLComplete", Status="fail", VideoId=DROP, ErrorCode="URLInvalidError", Size=DROP
        )
        assert isinstance(parsed, UploadByURLComplete)
        assert parsed.media_id is None
        assert not parsed.succeeded
        assert parsed.dedupe_key().startswith(f"UploadByURLComplete|{parsed.JobId}|")

    def test_structurally_wrong_nested(self) -> None:
        with pytest.raises(errors.InvalidParameter) as info:
            event("TranscodeComplete", StreamInfos="not a list")
        assert info.value.field == "StreamInfos"
        with pytest.raises(errors.InvalidParameter):
            event("TranscodeComplete", StreamInfos=[1, 2])

    @pytest.mark.parametrize(
        ("raw", "words"),
        [
            (b"", "JSON"),
            (b"{", "JSON"),
            (b'{"a":1,}', "JSON"),
            (b'{"EventType":"X","Size":NaN}', "JSON"),
            (b"\xff\xfe{}", "UTF-8"),
            (b"[]", "object"),
            (b'"FileUploadComplete"', "object"),
            (b"null", "object"),
        ],
    )
    def test_malformed(self, raw: bytes, words: str) -> None:
        with pytest.raises(errors.MalformedBody) as info:
            parse_event(raw)
        assert words in info.value.message

    def test_deeply_nested_body_is_malformed_not_a_crash(self) -> None:
        with pytest.raises(errors.MalformedBody):
            parse_event(b"[" * 100_000 + b"]" * 100_000)

    @pytest.mark.parametrize("raw", [b'{"VideoId":"v"}', b'{"EventType":""}', b'{"EventType":5}'])
    def test_missing_event_type(self, raw: bytes) -> None:
        with pytest.raises(errors.MissingParameter) as info:
            parse_event(raw)
        assert info.value.field == "EventType"


# --- succeeded and dedupe keys ----------------------------------------------------------------


@pytest.mark.parametrize(
    # No Status at all: the older FileUploadComplete shape, sent only when the upload worked.
    ("status", "ok"),
    [("success", True), ("SUCCESS", True), ("fail", False), ("", False), (DROP, True)],
)
def test_succeeded(status: Any, ok: bool) -> None:
    assert event("FileUploadComplete", Status=status).succeeded is ok


class TestDedupeKey:
    def test_stable_across_deliveries_and_key_order(self) -> None:
        data = sample("TranscodeComplete")
        reordered = dict(reversed(list(data.items())))
        assert (
            parse_event(json.dumps(data).encode()).dedupe_key()
            == parse_event(json.dumps(reordered).encode()).dedupe_key()
        )

    @pytest.mark.parametrize(
        "change",
        [
            {"Status": "fail"},
            {"EventTime": "2024-05-20T07:49:18Z"},
            {"VideoId": "another0000000000000000000000000"},
        ],
    )
    def test_changes_with_the_event(self, change: dict[str, Any]) -> None:
        assert event("FileUploadComplete", **change).dedupe_key() != event("FileUploadComplete").dedupe_key()

    def test_event_type_part_of_the_key(self) -> None:
        upload = event("FileUploadComplete")
        same_time = event("VideoUploadComplete", EventTime=sample("FileUploadComplete")["EventTime"])
        assert upload.media_id == same_time.media_id
        assert upload.dedupe_key() != same_time.dedupe_key()

    def test_streams_of_one_video_in_the_same_second(self) -> None:
        a = event("StreamTranscodeComplete")
        b = event("StreamTranscodeComplete", JobId="other-job", Definition="SD")
        assert a.dedupe_key() != b.dedupe_key()
        no_job_ld = event("StreamTranscodeComplete", JobId=DROP)
        no_job_sd = event("StreamTranscodeComplete", JobId=DROP, Definition="SD")
        assert no_job_ld.dedupe_key() != no_job_sd.dedupe_key()

    def test_media_base_changes_in_the_same_second(self) -> None:
        a = event("MediaBaseChangeComplete")
        b = event("MediaBaseChangeComplete", MediaContent={"Title": '{"NewValue":"x"}'})
        assert a.dedupe_key() != b.dedupe_key()

    def test_snapshot_job_ids(self) -> None:
        parsed = event("SnapshotComplete")
        assert isinstance(parsed, SnapshotComplete)
        assert parsed.job_id == ",".join(sorted(i.JobId or "" for i in parsed.SnapshotInfos))
        assert parsed.SnapshotInfos[0].urls()[-1].endswith("-00002.jpg")
        assert event("SnapshotComplete", SnapshotInfos=DROP).job_id is None


def test_transcode_aggregates_skip_failed_streams() -> None:
    streams = sample("TranscodeComplete")["StreamInfos"]
    streams[1] = {**streams[1], "Status": "fail", "Duration": 99, "Size": 5}
    parsed = event("TranscodeComplete", StreamInfos=streams)
    assert parsed.duration == 15.0
    assert parsed.streams_size == 1815321
    assert event("TranscodeComplete", StreamInfos=DROP).duration is None


def test_stream_start_and_finish_times() -> None:
    start = datetime(2024, 5, 20, 7, 50, tzinfo=timezone.utc)
    parsed = event("StreamTranscodeComplete", StartTime="2024-05-20T07:50:00Z", FinishTime="bad")
    assert parsed.StartTime == start
    assert parsed.FinishTime is None
    assert start + timedelta(minutes=1) > parsed.StartTime


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=2**53))
def test_any_size_as_number_or_string_parses_equal(size: int) -> None:
    assert (
        event("FileUploadComplete", Size=size).Size
        == event("FileUploadComplete", Size=str(size)).Size
        == size
    )
