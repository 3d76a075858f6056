"""shared/services/uploads.py: apply_policy and vod_params, the builders of what is sent to VOD.

Every test builds its own ``Settings(...)`` (which never reads the environment) and a request
through ``parse_request``, as ``create_upload`` does.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import errors
from shared.api_models import (
    EXTEND_MAX_BYTES,
    AccelerateConfig,
    CreateUploadVideoRequest,
    UserData,
    parse_request,
)
from shared.services.uploads import Policy, apply_policy, vod_params
from shared.settings import Settings
from shared.signing import EXTEND_SIG_KEY, EXTEND_UPLOAD_KEY, binding_keys, verify_binding
from shared.validation import find_emoji

UPLOAD_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # the form of shared.services.deps.new_id()
OWNER = "user-42"
BINDING_KEY = "binding-key-for-unit-tests"
CALLBACK_URL = "https://fc.example.com/vod/callback"
WORKFLOW = "613efff3887ec34af685714cc461abcd"
TEMPLATE = "405477f9e214d19ea2c7c854abcd"
LOCATION = "outin-3f5a7c9e1b2d11ee.oss-cn-shanghai.aliyuncs.com"
CATE_ID = 1000363456

# field -> (its default setting, its allowed setting, a value, another value)
POLICY_FIELDS: dict[str, tuple[str, str, Any, Any]] = {
    "WorkflowId": ("default_workflow_id", "allowed_workflow_ids", WORKFLOW, "wf-other"),
    "TemplateGroupId": (
        "default_template_group_id",
        "allowed_template_group_ids",
        TEMPLATE,
        "VOD_NO_TRANSCODE",
    ),
    "StorageLocation": (
        "default_storage_location",
        "allowed_storage_locations",
        LOCATION,
        "outin-other.oss-cn-beijing.aliyuncs.com",
    ),
    "AppId": ("default_app_id", "allowed_app_ids", "app-1000000", "app-2000001"),
    "CateId": ("default_cate_id", "allowed_cate_ids", CATE_ID, 7),
}


def make_settings(**values: Any) -> Settings:
    return Settings(**{"upload_binding_key": BINDING_KEY, **values})


def request(**changes: Any) -> CreateUploadVideoRequest:
    body: dict[str, Any] = {"Title": "Holiday in Hangzhou", "FileName": "clip.mp4", **changes}
    return parse_request(CreateUploadVideoRequest, body)


def build(
    req: CreateUploadVideoRequest,
    config: Settings | None = None,
    *,
    upload_id: str = UPLOAD_ID,
    owner: str = OWNER,
) -> dict[str, str]:
    """What create_upload sends to VOD for ``req``."""
    config = make_settings() if config is None else config
    return vod_params(req, apply_policy(req, config), upload_id, owner, config)


def sent_user_data(params: dict[str, str]) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(params["UserData"])
    return value


def refused(error: type[errors.VodfcError], code: str, field: str, config: Settings, **changes: Any) -> str:
    """``apply_policy`` refuses the request with ``error``; returns the message."""
    req = request(**changes)
    with pytest.raises(error) as info:
        apply_policy(req, config)
    assert type(info.value) is error
    assert (info.value.code, info.value.field) == (code, field)
    return info.value.message


# --- vod_params: every parameter ----------------------------------------------------------------


class TestParameters:
    def test_minimal_request(self) -> None:
        params = build(request())
        assert set(params) == {"Title", "FileName", "ReferenceId", "UserData"}
        assert params["Title"] == "Holiday in Hangzhou"
        assert params["FileName"] == "clip.mp4"
        assert params["ReferenceId"] == UPLOAD_ID
        assert set(sent_user_data(params)) == {"Extend"}

    def test_full_request_every_parameter_passed_through(self) -> None:
        config = make_settings(
            callback_url=CALLBACK_URL,
            allowed_template_group_ids=(TEMPLATE,),
            allowed_storage_locations=(LOCATION,),
            allowed_cate_ids=(CATE_ID,),
            allowed_app_ids=("app-2000001",),
        )
        req = request(
            Title="Holiday",
            FileName="C:\\v\\clip.MP4",
            FileSize=123,
            Description="line 1\nline 2",
            CoverURL="https://example.com/c.jpg",
            CateId=CATE_ID,
            Tags=["a", "b"],
            UserData={
                "Extend": {"localId": "x"},
                "AccelerateConfig": {"Type": "oss", "Domain": "https://oss-accelerate.aliyuncs.com"},
            },
            TemplateGroupId=TEMPLATE,
            StorageLocation=LOCATION,
            AppId="app-2000001",
        )
        params = build(req, config)
        user_data = sent_user_data(params)
        assert {k: v for k, v in params.items() if k != "UserData"} == {
            "Title": "Holiday",
            "FileName": "clip.MP4",
            "FileSize": "123",
            "Description": "line 1\nline 2",
            "CoverURL": "https://example.com/c.jpg",
            "CateId": "1000363456",
            "Tags": "a,b",
            "TemplateGroupId": TEMPLATE,
            "StorageLocation": LOCATION,
            "AppId": "app-2000001",
            "ReferenceId": UPLOAD_ID,
        }
        assert user_data["Extend"]["localId"] == "x"
        assert user_data["MessageCallback"] == {"CallbackURL": CALLBACK_URL, "CallbackType": "http"}
        assert user_data["AccelerateConfig"] == {
            "Type": "oss",
            "Domain": "https://oss-accelerate.aliyuncs.com",
        }

    @pytest.mark.parametrize(
        ("changes", "values"),
        [
            pytest.param({}, {}, id="minimal"),
            pytest.param(
                {"Description": "", "CoverURL": "", "Tags": "", "AppId": "", "StorageLocation": ""},
                {},
                id="empty-strings",
            ),
            pytest.param({"FileSize": 0, "Tags": []}, {"callback_url": CALLBACK_URL}, id="zero-and-callback"),
            pytest.param(
                {"WorkflowId": WORKFLOW, "TemplateGroupId": TEMPLATE},
                {"allowed_workflow_ids": (WORKFLOW,), "allowed_template_group_ids": (TEMPLATE,)},
                id="workflow-and-template",
            ),
            pytest.param(
                {},
                {
                    "default_template_group_id": TEMPLATE,
                    "default_storage_location": LOCATION,
                    "default_app_id": "app-1000000",
                    "default_cate_id": CATE_ID,
                },
                id="defaults",
            ),
        ],
    )
    def test_no_none_and_every_value_a_str(self, changes: dict[str, Any], values: dict[str, Any]) -> None:
        params = build(request(**changes), make_settings(**values))
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
        assert "None" not in params.values()
        assert "null" not in params["UserData"]

    def test_empty_optional_strings_are_not_sent(self) -> None:
        params = build(request(Description="", CoverURL="", Tags="", AppId="", StorageLocation=""))
        assert set(params) == {"Title", "FileName", "ReferenceId", "UserData"}

    def test_zero_file_size_is_sent(self) -> None:
        assert build(request(FileSize=0))["FileSize"] == "0"

    @pytest.mark.parametrize(
        ("given", "kept"),
        [
            ("C:\\Users\\bob\\Videos\\clip.MOV", "clip.MOV"),
            ("/home/bob/clip.mkv", "clip.mkv"),
            ("../../etc/clip.mp4", "clip.mp4"),
            ("my holiday.final.mp4", "my holiday.final.mp4"),
        ],
    )
    def test_file_name_is_the_basename(self, given: str, kept: str) -> None:
        assert build(request(FileName=given))["FileName"] == kept

    @pytest.mark.parametrize(
        ("tags", "sent"), [(["a", "b"], "a,b"), (" a , b ", "a,b"), ("中文,x", "中文,x")]
    )
    def test_tags_as_comma_string(self, tags: Any, sent: str) -> None:
        assert build(request(Tags=tags))["Tags"] == sent

    @pytest.mark.parametrize("cate_id", [1, CATE_ID, 2**63 - 1])
    def test_cate_id_as_string(self, cate_id: int) -> None:
        params = build(request(CateId=cate_id), make_settings(allowed_cate_ids=(cate_id,)))
        assert params["CateId"] == str(cate_id)

    def test_reference_id_is_the_upload_id(self) -> None:
        assert build(request(), upload_id="a" * 32)["ReferenceId"] == "a" * 32
        assert sent_user_data(build(request(), upload_id="a" * 32))["Extend"][EXTEND_UPLOAD_KEY] == "a" * 32

    def test_no_app_id_unless_the_client_or_the_operator_gives_one(self) -> None:
        # VOD then applies its own default application (app-1000000); we do not name it.
        assert "AppId" not in build(request())
        assert build(request(), make_settings(default_app_id="app-1000000"))["AppId"] == "app-1000000"
        assert build(request(AppId=""), make_settings(default_app_id="app-1000000"))["AppId"] == "app-1000000"

    def test_vod_params_is_deterministic_and_leaves_the_policy_alone(self) -> None:
        config = make_settings()
        req = request(UserData={"Extend": {"localId": "x"}})
        policy = apply_policy(req, config)
        first = vod_params(req, policy, UPLOAD_ID, OWNER, config)
        assert vod_params(req, policy, UPLOAD_ID, OWNER, config) == first
        assert policy.extend == {"localId": "x"}
        assert req.UserData is not None and req.UserData.Extend == {"localId": "x"}


# Text VOD accepts: BMP, no controls/format characters/surrogates, no emoji.
_title_chars = st.characters(
    max_codepoint=0xFFFF, exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp", "Co", "Cn")
).filter(lambda c: find_emoji(c) is None)


@settings(max_examples=100, deadline=None)
@given(st.text(_title_chars, min_size=1, max_size=128))
def test_any_valid_title_is_sent_unchanged(title: str) -> None:
    if not title.strip() or len(title.encode()) > 128:
        return
    assert build(request(Title=title))["Title"] == title


# --- vod_params: UserData -----------------------------------------------------------------------


class TestUserData:
    def test_compact_json_with_non_ascii_kept(self) -> None:
        params = build(
            request(UserData={"Extend": {"标题": "值", "n": [1, 2]}}),
            make_settings(callback_url=CALLBACK_URL),
        )
        raw = params["UserData"]
        assert raw == json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False)
        assert '"标题":"值"' in raw
        assert "\\u" not in raw and ": " not in raw and ", " not in raw

    def test_extend_is_the_clients_plus_the_owner_binding(self) -> None:
        extend = sent_user_data(build(request(UserData={"Extend": {"localId": "x", "n": 1}})))["Extend"]
        assert list(extend) == ["localId", "n", EXTEND_UPLOAD_KEY, EXTEND_SIG_KEY]
        assert (extend["localId"], extend["n"], extend[EXTEND_UPLOAD_KEY]) == ("x", 1, UPLOAD_ID)
        assert (EXTEND_UPLOAD_KEY, EXTEND_SIG_KEY) == ("vodfc_uid", "vodfc_sig")

    @pytest.mark.parametrize("user_data", [None, {}, "{}", {"Extend": {}}, {"Extend": "{}"}])
    def test_without_client_members_only_the_binding_is_sent(self, user_data: Any) -> None:
        req = request() if user_data is None else request(UserData=user_data)
        extend = sent_user_data(build(req))
        assert list(extend) == ["Extend"]
        assert list(extend["Extend"]) == [EXTEND_UPLOAD_KEY, EXTEND_SIG_KEY]

    def test_object_and_json_string_send_the_same(self) -> None:
        value = {
            "Extend": {"localId": "1"},
            "AccelerateConfig": {"Type": "oss", "Domain": "https://a.example.com"},
        }
        assert build(request(UserData=value)) == build(request(UserData=json.dumps(value)))

    def test_binding_verifies_for_its_owner_only(self) -> None:
        config = make_settings()
        sig = sent_user_data(build(request(), config))["Extend"][EXTEND_SIG_KEY]
        keys = binding_keys(config)
        assert verify_binding(keys, UPLOAD_ID, OWNER, sig)
        assert not verify_binding(keys, UPLOAD_ID, "user-43", sig)
        assert not verify_binding(keys, "f" * 32, OWNER, sig)
        other = sent_user_data(build(request(), config, owner="user-43"))["Extend"][EXTEND_SIG_KEY]
        assert other != sig
        assert not verify_binding(keys, UPLOAD_ID, OWNER, other)
        assert not verify_binding(
            binding_keys(make_settings(upload_binding_key="another-key")), UPLOAD_ID, OWNER, sig
        )

    def test_binding_is_signed_with_the_current_callback_key(self) -> None:
        old = Settings(callback_auth_key="old-callback-key")
        rotated = Settings(
            callback_auth_key="new-callback-key", callback_auth_key_previous="old-callback-key"
        )
        signed_before = sent_user_data(build(request(), old))["Extend"][EXTEND_SIG_KEY]
        signed_after = sent_user_data(build(request(), rotated))["Extend"][EXTEND_SIG_KEY]
        assert verify_binding(binding_keys(rotated), UPLOAD_ID, OWNER, signed_before)  # in flight
        assert verify_binding(binding_keys(rotated), UPLOAD_ID, OWNER, signed_after)
        assert not verify_binding(binding_keys(old), UPLOAD_ID, OWNER, signed_after)  # not the previous key

    @pytest.mark.parametrize("callback_url", [None, ""])
    def test_no_message_callback_without_callback_url(self, callback_url: str | None) -> None:
        params = build(request(), make_settings(callback_url=callback_url))
        assert "MessageCallback" not in sent_user_data(params)

    def test_message_callback_when_callback_url_is_configured(self) -> None:
        params = build(request(), make_settings(callback_url=CALLBACK_URL))
        assert sent_user_data(params)["MessageCallback"] == {
            "CallbackURL": CALLBACK_URL,
            "CallbackType": "http",
        }

    @pytest.mark.parametrize("callback_url", [None, CALLBACK_URL])
    def test_clients_message_callback_is_refused(self, callback_url: str | None) -> None:
        message = refused(
            errors.InvalidParameter,
            "InvalidParameter.MessageCallback",
            "UserData.MessageCallback",
            make_settings(callback_url=callback_url),
            UserData={"MessageCallback": {"CallbackURL": "https://attacker.example.com/"}},
        )
        assert "attacker" not in message

    def test_accelerate_config_passed_through(self) -> None:
        value = {"Type": "oss", "Domain": "https://oss-accelerate.aliyuncs.com"}
        req = request(UserData={"AccelerateConfig": value})
        assert apply_policy(req, make_settings()).accelerate == AccelerateConfig(**value)
        assert sent_user_data(build(req))["AccelerateConfig"] == value

    def test_what_is_sent_passes_our_own_user_data_rules(self) -> None:
        config = make_settings(callback_url=CALLBACK_URL, client_extend_max_bytes=400)
        overhead = len('{"k":""}')
        req = request(
            UserData={
                "Extend": {"k": "中" * ((400 - overhead) // 3)},
                "AccelerateConfig": {"Type": "oss", "Domain": "https://oss-accelerate.aliyuncs.com"},
            }
        )
        params = build(req, config)
        sent = UserData.model_validate_json(params["UserData"])  # VOD's rules, as our model holds them
        assert sent.Extend is not None
        size = len(json.dumps(sent.Extend, separators=(",", ":"), ensure_ascii=False).encode())
        assert size <= EXTEND_MAX_BYTES


# --- apply_policy: Extend -----------------------------------------------------------------------


class TestExtend:
    @pytest.mark.parametrize("key", ["vodfc_uid", "vodfc_sig", "VODFC_uid", "Vodfc", "vodfcX"])
    def test_reserved_keys_refused(self, key: str) -> None:
        refused(
            errors.InvalidParameter,
            "InvalidParameter",
            "UserData.Extend",
            make_settings(),
            UserData={"Extend": {key: "x"}},
        )

    @pytest.mark.parametrize("key", ["xvodfc", "vod_fc", "my_vodfc_uid"])
    def test_other_keys_accepted(self, key: str) -> None:
        assert apply_policy(request(UserData={"Extend": {key: "x"}}), make_settings()).extend == {key: "x"}

    @pytest.mark.parametrize("limit", [8, 256, 400])
    def test_limit_both_sides(self, limit: int) -> None:
        overhead = len('{"k":""}')
        config = make_settings(client_extend_max_bytes=limit)
        at_limit = {"k": "v" * (limit - overhead)}
        assert apply_policy(request(UserData={"Extend": at_limit}), config).extend == at_limit
        message = refused(
            errors.InvalidParameter,
            "InvalidParameter.Extend",
            "UserData.Extend",
            config,
            UserData={"Extend": {"k": "v" * (limit - overhead + 1)}},
        )
        assert f"at most {limit}" in message

    def test_limit_counts_utf8_bytes(self) -> None:
        config = make_settings(client_extend_max_bytes=14)  # '{"k":""}' + 6 bytes
        assert apply_policy(request(UserData={"Extend": {"k": "中中"}}), config).extend == {"k": "中中"}
        refused(
            errors.InvalidParameter,
            "InvalidParameter.Extend",
            "UserData.Extend",
            config,
            UserData={"Extend": {"k": "中中a"}},
        )

    def test_empty_extend_passes_a_zero_limit(self) -> None:
        config = make_settings(client_extend_max_bytes=0)
        assert apply_policy(request(UserData={"Extend": {}}), config).extend == {}
        refused(
            errors.InvalidParameter,
            "InvalidParameter.Extend",
            "UserData.Extend",
            config,
            UserData={"Extend": {"k": ""}},
        )


# --- apply_policy: file ---------------------------------------------------------------------------


class TestFile:
    def test_allowed_extensions(self) -> None:
        config = make_settings(allowed_extensions="mp4,.MOV")
        assert apply_policy(request(FileName="clip.mp4"), config)
        assert apply_policy(request(FileName="clip.MOV"), config)
        message = refused(
            errors.InvalidParameter, "InvalidFileName.Extension", "FileName", config, FileName="clip.mkv"
        )
        assert "Allowed: mov, mp4" in message

    def test_max_file_size_both_sides(self) -> None:
        config = make_settings(max_file_size=1000)
        assert apply_policy(request(FileSize=1000), config)
        assert apply_policy(request(), config)  # no FileSize: VOD learns the size from OSS
        refused(errors.InvalidParameter, "InvalidParameter.FileSize", "FileSize", config, FileSize=1001)


# --- apply_policy: the operator's choices -------------------------------------------------------


class TestChoices:
    def test_policy_is_frozen(self) -> None:
        policy = apply_policy(request(), make_settings())
        with pytest.raises(AttributeError):
            policy.app_id = "app-2000001"  # type: ignore[misc]

    def test_nothing_configured_nothing_chosen(self) -> None:
        assert apply_policy(request(), make_settings()) == Policy(
            workflow_id=None,
            template_group_id=None,
            storage_location=None,
            app_id=None,
            cate_id=None,
            extend={},
            accelerate=None,
        )

    @pytest.mark.parametrize("field", list(POLICY_FIELDS))
    def test_default_used_when_the_client_sends_nothing(self, field: str) -> None:
        default_setting, _, value, _ = POLICY_FIELDS[field]
        assert build(request(), make_settings(**{default_setting: value}))[field] == str(value)

    @pytest.mark.parametrize("field", list(POLICY_FIELDS))
    def test_client_value_equal_to_the_default_accepted(self, field: str) -> None:
        default_setting, _, value, _ = POLICY_FIELDS[field]
        assert build(request(**{field: value}), make_settings(**{default_setting: value}))[field] == str(
            value
        )

    @pytest.mark.parametrize("field", list(POLICY_FIELDS))
    @pytest.mark.parametrize("with_default", [False, True])
    def test_client_value_the_operator_allows_is_used(self, field: str, with_default: bool) -> None:
        default_setting, allowed_setting, value, other = POLICY_FIELDS[field]
        config = make_settings(
            **{allowed_setting: (value, other)}, **({default_setting: value} if with_default else {})
        )
        assert build(request(**{field: other}), config)[field] == str(other)

    @pytest.mark.parametrize("field", list(POLICY_FIELDS))
    @pytest.mark.parametrize("configured", ["nothing", "default", "allowed", "both"])
    def test_any_other_value_is_forbidden(self, field: str, configured: str) -> None:
        default_setting, allowed_setting, value, other = POLICY_FIELDS[field]
        values: dict[str, Any] = {}
        if configured in ("default", "both"):
            values[default_setting] = value
        if configured in ("allowed", "both"):
            values[allowed_setting] = (value,)
        message = refused(
            errors.Forbidden, f"Forbidden.{field}", field, make_settings(**values), **{field: other}
        )
        assert message.startswith(f"{field} ")

    def test_allowed_list_from_a_comma_string(self) -> None:
        config = make_settings(allowed_app_ids="app-2000001, app-3000001", allowed_cate_ids="7,8")
        params = build(request(AppId="app-3000001", CateId=8), config)
        assert (params["AppId"], params["CateId"]) == ("app-3000001", "8")

    def test_reference_id_from_a_client_is_forbidden(self) -> None:
        refused(
            errors.Forbidden,
            "Forbidden.ReferenceId",
            "ReferenceId",
            make_settings(),
            ReferenceId="ref-000001",
        )


class TestWorkflowWins:
    def test_client_sends_both(self) -> None:
        config = make_settings(allowed_workflow_ids=(WORKFLOW,), allowed_template_group_ids=(TEMPLATE,))
        req = request(WorkflowId=WORKFLOW, TemplateGroupId=TEMPLATE)
        policy = apply_policy(req, config)
        assert (policy.workflow_id, policy.template_group_id) == (WORKFLOW, None)
        params = build(req, config)
        assert params["WorkflowId"] == WORKFLOW
        assert "TemplateGroupId" not in params

    def test_both_defaults(self) -> None:
        params = build(
            request(), make_settings(default_workflow_id=WORKFLOW, default_template_group_id=TEMPLATE)
        )
        assert params["WorkflowId"] == WORKFLOW
        assert "TemplateGroupId" not in params

    def test_default_workflow_over_an_allowed_template_group(self) -> None:
        config = make_settings(default_workflow_id=WORKFLOW, allowed_template_group_ids=(TEMPLATE,))
        params = build(request(TemplateGroupId=TEMPLATE), config)
        assert params["WorkflowId"] == WORKFLOW
        assert "TemplateGroupId" not in params

    def test_template_group_alone(self) -> None:
        params = build(
            request(TemplateGroupId="VOD_NO_TRANSCODE"),
            make_settings(allowed_template_group_ids=("VOD_NO_TRANSCODE",)),
        )
        assert params["TemplateGroupId"] == "VOD_NO_TRANSCODE"
        assert "WorkflowId" not in params

    def test_a_forbidden_template_group_is_refused_even_when_a_workflow_wins(self) -> None:
        config = make_settings(allowed_workflow_ids=(WORKFLOW,))
        refused(
            errors.Forbidden,
            "Forbidden.TemplateGroupId",
            "TemplateGroupId",
            config,
            WorkflowId=WORKFLOW,
            TemplateGroupId=TEMPLATE,
        )
