"""template.yml (FC 2.0, Funcraft/ROS) and s.yaml (FC 3.0, Serverless Devs fc3): structure and agreement.

Neither tool validates offline in a useful way (``fun validate`` rejects python3.10, ``s verify``
needs the network), so these checks mirror the schemas (docs/DEPLOY.md, the FC reference) and,
more usefully, tie both files to the code: handlers that exist, environment variables that are real
settings, the settings each function needs, and a RAM policy with exactly the VOD actions the
client calls.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("upload_credentials", "vod_callback", "cleanup")
HTTP_FUNCTIONS = ("upload_credentials", "vod_callback")
ROUTES = {
    "/uploads": "upload_credentials",
    "/uploads/*": "upload_credentials",
    "/images": "upload_credentials",
    "/images/*": "upload_credentials",
    "/attached-media": "upload_credentials",
    "/attached-media/*": "upload_credentials",
    "/callbacks/vod": "vod_callback",
}
SECRET_PARAMETERS = {
    "DatabaseUrl", "CallbackAuthKey", "CallbackAuthKeyPrevious", "JwtSecret", "WebhookSecret",
    "WebhookSecretPrevious",
}  # fmt: skip
SECRET_SETTINGS = {
    name.upper() for name, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)
}  # DATABASE_URL, JWT_SECRET, CALLBACK_AUTH_KEY, ...

# Settings a function cannot work without in production (defaults are for local development).
REQUIRED = {
    "upload_credentials": {
        "DATABASE_URL",
        "AUTH_MODE",
        "CALLBACK_URL",
        "CALLBACK_AUTH_KEY",
        "ALLOWED_ORIGINS",
    },
    "vod_callback": {"DATABASE_URL", "CALLBACK_URL", "CALLBACK_AUTH_KEY"},
    "cleanup": {"DATABASE_URL"},
}

TOP_LEVEL = {
    "ROSTemplateFormatVersion", "Transform", "Description", "Parameters", "Mappings", "Conditions",
    "Outputs", "Resources",
}  # fmt: skip
SERVICE_PROPERTIES = {
    "Description", "Role", "Policies", "InternetAccess", "LogConfig", "VpcConfig", "NasConfig",
    "TracingConfig",
}  # fmt: skip
FUNCTION_PROPERTIES = {
    "Handler", "Runtime", "CodeUri", "Description", "MemorySize", "Timeout", "Initializer",
    "InitializationTimeout", "EnvironmentVariables", "InstanceConcurrency", "InstanceType",
    "InstanceLifecycleConfig", "AsyncConfiguration", "Layers",
}  # fmt: skip
MEMORY_SIZES = {*range(128, 3072 + 1, 64), 4096, 8192, 16384, 32768}
FC3_PROPS = {
    "region", "functionName", "description", "runtime", "code", "handler", "memorySize", "cpu", "diskSize",
    "timeout", "environmentVariables", "role", "internetAccess", "logConfig", "vpcConfig", "nasConfig",
    "ossMountConfig", "layers", "instanceLifecycleConfig", "instanceConcurrency", "asyncInvokeConfig",
    "customDNS", "tracingConfig", "triggers",
}  # fmt: skip


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _load("template.yml")


@pytest.fixture(scope="module")
def s_yaml() -> dict[str, Any]:
    return _load("s.yaml")


def _service(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    services = [
        (k, v) for k, v in template["Resources"].items() if v.get("Type") == "Aliyun::Serverless::Service"
    ]
    assert len(services) == 1, "exactly one FC 2.0 service"
    return services[0]


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    _, service = _service(template)
    return {
        k: v
        for k, v in service.items()
        if isinstance(v, dict) and v.get("Type") == "Aliyun::Serverless::Function"
    }


def _domains(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in template["Resources"].values() if v.get("Type") == "Aliyun::Serverless::CustomDomain"]


def _vod_actions_called() -> set[str]:
    """The VOD OpenAPI actions shared/vod.py sends (``self._call("Action", ...)``, or
    ``self._create("Action", ...)`` for the creates)."""
    source = (ROOT / "shared" / "vod.py").read_text(encoding="utf-8")
    actions = set(re.findall(r"_(?:call|create)\(\s*\"([A-Z][A-Za-z]+)\"", source))
    assert actions, "no VOD actions found in shared/vod.py"
    return actions


def _policy_actions(template: dict[str, Any]) -> list[str]:
    _, service = _service(template)
    actions: list[str] = []
    for policy in service["Properties"]["Policies"]:
        assert isinstance(policy, dict), f"only inline policy documents, no managed policy: {policy!r}"
        assert policy["Version"] == "1"
        for statement in policy["Statement"]:
            assert set(statement) == {"Effect", "Action", "Resource"}
            assert statement["Effect"] == "Allow"
            assert isinstance(statement["Action"], list) and isinstance(statement["Resource"], str)
            actions.extend(statement["Action"])
    return actions


# --- template.yml ---------------------------------------------------------------------------------
def test_template_top_level(template: dict[str, Any]) -> None:
    assert template["ROSTemplateFormatVersion"] == "2015-09-01"
    assert template["Transform"] == "Aliyun::Serverless-2018-04-03"
    assert set(template) <= TOP_LEVEL
    name, service = _service(template)
    assert re.fullmatch(r"[a-zA-Z_][a-zA-Z.0-9_-]{0,127}", name)
    assert set(service["Properties"]) <= SERVICE_PROPERTIES
    assert "Role" not in service["Properties"], "with Role set, Funcraft ignores Policies"


def test_template_functions_nested_under_the_service(template: dict[str, Any]) -> None:
    functions = _functions(template)
    assert set(functions) == set(FUNCTIONS)
    for name, fn in functions.items():
        assert set(fn) <= {"Type", "Properties", "Events"}
        props = fn["Properties"]
        assert set(props) <= FUNCTION_PROPERTIES
        assert props["Runtime"] == "python3.10"
        assert props["Handler"] == "index.handler"
        assert props["CodeUri"] == f"./dist/{name}.zip"
        assert isinstance(props["MemorySize"], int) and props["MemorySize"] in MEMORY_SIZES
        assert isinstance(props["Timeout"], int) and 1 <= props["Timeout"] <= 300
        env = props.get("EnvironmentVariables") or {}
        for key, value in env.items():
            assert isinstance(value, str) or set(value) == {"Ref"}, f"{name}.{key} must be a string or a Ref"


def test_policy_lists_exactly_the_vod_actions_the_client_calls(template: dict[str, Any]) -> None:
    actions = _policy_actions(template)
    assert len(actions) == len(set(actions))
    assert all(a.startswith("vod:") for a in actions), "the role needs VOD only"
    assert {a.removeprefix("vod:") for a in actions} == _vod_actions_called()


@pytest.mark.parametrize("function", HTTP_FUNCTIONS)
def test_http_triggers_are_anonymous(template: dict[str, Any], function: str) -> None:
    events = _functions(template)[function]["Events"]
    http = [e for e in events.values() if e["Type"] == "HTTP"]
    assert len(http) == 1, "one HTTP trigger per function"
    props = http[0]["Properties"]
    assert props["AuthType"] == "ANONYMOUS"  # the functions authenticate (JWT, callback signature)
    assert isinstance(props["Methods"], list) and props["Methods"]
    assert set(props["Methods"]) <= {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"}


def test_cleanup_timers(template: dict[str, Any]) -> None:
    """The 15-minute sweep and the every-minute run that finishes pending events."""
    events = _functions(template)["cleanup"]["Events"]
    assert [e["Type"] for e in events.values()] == ["Timer", "Timer"]
    payloads = {}
    for name, event in events.items():
        props = event["Properties"]
        cron = props["CronExpression"]
        assert isinstance(cron, str)
        fields = re.sub(r"^CRON_TZ=\S+\s+", "", cron).split()
        assert len(fields) == 6, f"FC cron has 6 fields (sec min hour day month weekday): {cron!r}"
        assert props["Enable"] is True
        assert isinstance(props["Payload"], str)
        payloads[name] = json.loads(props["Payload"])
    assert payloads["every-15-minutes"] == {}
    frequent = payloads["every-minute"]
    assert frequent["prune"] is False and 0 < frequent["budgetSeconds"] < 60  # one run per minute


def test_custom_domain_routes(template: dict[str, Any]) -> None:
    service_name, _ = _service(template)
    domains = _domains(template)
    assert len(domains) == 1
    props = domains[0]["Properties"]
    assert props["Protocol"] in ("HTTP", "HTTP,HTTPS")
    routes = props["RouteConfig"]["Routes"]
    assert {path: r["FunctionName"] for path, r in routes.items()} == ROUTES
    assert {r["ServiceName"] for r in routes.values()} == {service_name}


def test_parameters(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    envs = [fn["Properties"]["EnvironmentVariables"] for fn in _functions(template).values()]
    refs = {v["Ref"] for env in envs for v in env.values() if isinstance(v, dict)}
    refs |= {layer["Ref"] for fn in _functions(template).values() for layer in fn["Properties"]["Layers"]}
    assert refs <= set(params), f"undeclared parameters: {refs - set(params)}"
    assert set(params) <= refs, f"unused parameters: {set(params) - refs}"
    for name in SECRET_PARAMETERS:
        assert params[name].get("NoEcho") is True, f"{name} is a secret"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_attaches_the_postgres_layer(template: dict[str, Any], function: str) -> None:
    """The driver is not in the function zips: FC mounts the layer at /opt (docs/DEPLOY.md)."""
    assert _functions(template)[function]["Properties"]["Layers"] == [{"Ref": "PostgresLayerArn"}]
    assert "acs:fc:" in template["Parameters"]["PostgresLayerArn"]["Description"]
    assert "Default" not in template["Parameters"]["PostgresLayerArn"], "the operator publishes it"


# --- the code behind the templates ------------------------------------------------------------
@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_file_exists(template: dict[str, Any], function: str) -> None:
    module, attr = _functions(template)[function]["Properties"]["Handler"].rsplit(".", 1)
    path = ROOT / "functions" / function / f"{module.replace('.', '/')}.py"
    assert path.is_file(), f"{path} missing"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert attr in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, f"{path} has no {attr}()"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_environment_variables_are_settings(template: dict[str, Any], function: str) -> None:
    env = _functions(template)[function]["Properties"]["EnvironmentVariables"]
    known = {name.upper() for name in Settings.model_fields}
    assert set(env) <= known, f"not settings (typo?): {sorted(set(env) - known)}"
    missing = REQUIRED[function] - set(env)
    assert not missing, f"{function} needs {sorted(missing)}"
    for name, value in env.items():
        if name in SECRET_SETTINGS:
            assert isinstance(value, dict), f"{function}.{name} is a secret: use a NoEcho parameter"
    if function == "upload_credentials":
        assert env["AUTH_MODE"] == "jwt"
        assert {"JWT_SECRET", "JWT_PUBLIC_KEY"} & set(env), "JWT mode needs a key"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_literal_values_are_valid_settings(template: dict[str, Any], function: str) -> None:
    env = _functions(template)[function]["Properties"]["EnvironmentVariables"]
    literals = {k.lower(): v for k, v in env.items() if isinstance(v, str)}
    Settings(**literals)  # raises on a value the function would refuse at cold start


# Every function changes uploads, and the store writes the notification of each change: all three
# must record (and send) the same notifications, signed alike.
WEBHOOK_SETTINGS = (
    "WEBHOOK_URL", "WEBHOOK_SECRET", "WEBHOOK_SECRET_PREVIOUS", "WEBHOOK_EVENTS", "WEBHOOK_DELIVERY",
)  # fmt: skip


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_notifies_the_app(template: dict[str, Any], function: str) -> None:
    env = _functions(template)[function]["Properties"]["EnvironmentVariables"]
    assert set(WEBHOOK_SETTINGS) <= set(env), f"{function} changes uploads: it needs {WEBHOOK_SETTINGS}"
    assert all(isinstance(env[name], dict) for name in WEBHOOK_SETTINGS), "parameters, set at deploy time"
    template_params = template["Parameters"]
    assert template_params[env["WEBHOOK_URL"]["Ref"]]["Default"] == "", "off unless the operator sets it"


def test_credentials_and_callback_share_the_binding_key(template: dict[str, Any]) -> None:
    """The callback checks an HMAC the credentials function made: both must derive the same key."""
    functions = _functions(template)

    def source(function: str) -> tuple[str, Any]:
        env = functions[function]["Properties"]["EnvironmentVariables"]
        name = next(n for n in ("UPLOAD_BINDING_KEY", "CALLBACK_AUTH_KEY", "JWT_SECRET") if n in env)
        return name, env[name]

    assert source("upload_credentials") == source("vod_callback")


def test_shared_settings_agree_across_functions(template: dict[str, Any]) -> None:
    functions = _functions(template)
    for name in ("VOD_REGION", "VOD_SIGNATURE_VERSION", "DATABASE_URL", "CALLBACK_URL", "CALLBACK_AUTH_KEY",
                 "MAX_FILE_SIZE", "MAX_IMAGE_SIZE", "MAX_ATTACHED_MEDIA_SIZE",
                 *WEBHOOK_SETTINGS):  # fmt: skip
        values = {json.dumps(fn["Properties"]["EnvironmentVariables"][name]) for fn in functions.values()
                  if name in fn["Properties"]["EnvironmentVariables"]}  # fmt: skip
        assert len(values) <= 1, f"{name} differs between functions: {values}"


# --- s.yaml (FC 3.0) and its agreement with template.yml ---------------------------------------
def _resolve(s_yaml: dict[str, Any], value: Any) -> Any:
    """Resolve ``${vars.x}`` and ``${resources.r.props.p}``; ``${env(...)}`` stays as written."""
    if not isinstance(value, str):
        return value
    match = re.fullmatch(r"\$\{(vars|resources)\.([\w.-]+)\}", value)
    if not match:
        return value
    node: Any = s_yaml[match.group(1)]
    for part in match.group(2).split("."):
        node = node[part]
    return _resolve(s_yaml, node)


def _fc3(s_yaml: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["props"] for k, v in s_yaml["resources"].items() if v["component"] == "fc3"}


def test_s_yaml_top_level(s_yaml: dict[str, Any]) -> None:
    assert str(s_yaml["edition"]) == "3.0.0"
    assert s_yaml["name"] and s_yaml["access"]
    assert set(_fc3(s_yaml)) == set(FUNCTIONS)
    components = sorted(v["component"] for v in s_yaml["resources"].values())
    assert components == ["fc3", "fc3", "fc3", "fc3-domain"]
    for name, props in _fc3(s_yaml).items():
        assert set(props) <= FC3_PROPS, f"{name}: unknown fc3 props {set(props) - FC3_PROPS}"
        assert {"region", "functionName", "runtime", "code", "handler"} <= set(props)
        assert re.fullmatch(r"[_a-zA-Z][-_a-zA-Z0-9]{0,63}", props["functionName"])
        assert _resolve(s_yaml, props["role"]).startswith("acs:ram::")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_s_yaml_agrees_with_template(template: dict[str, Any], s_yaml: dict[str, Any], function: str) -> None:
    fc2 = _functions(template)[function]
    fc2_props = fc2["Properties"]
    fc3 = _fc3(s_yaml)[function]
    _, service = _service(template)
    assert fc3["runtime"] == fc2_props["Runtime"]
    assert fc3["handler"] == fc2_props["Handler"]
    assert fc3["code"] == fc2_props["CodeUri"]
    assert fc3["memorySize"] == fc2_props["MemorySize"]
    assert fc3["timeout"] == fc2_props["Timeout"]
    assert fc3["description"] == fc2_props["Description"]
    assert fc3["internetAccess"] == service["Properties"]["InternetAccess"]
    log = _resolve(s_yaml, fc3["logConfig"])
    fc2_log = service["Properties"]["LogConfig"]
    assert (log["project"], log["logstore"]) == (fc2_log["Project"], fc2_log["Logstore"])

    params = template["Parameters"]
    env2 = fc2_props["EnvironmentVariables"]
    env3 = fc3["environmentVariables"]
    assert set(env3) == set(env2)
    for name, value in env2.items():
        value3 = env3[name]
        if isinstance(value, str):
            assert value3 == value, name
        elif value["Ref"] in SECRET_PARAMETERS:
            # a secret: read from the deployer's environment, never written into s.yaml
            assert re.fullmatch(r"\$\{env\('VODFC_" + name + r"'(, '')?\)\}", value3), f"{name}: {value3!r}"
        else:
            assert _resolve(s_yaml, value3) == params[value["Ref"]]["Default"], name

    events = fc2.get("Events") or {}
    # The MNS queue trigger (EventBridge) exists only in s.yaml: Funcraft cannot express it.
    triggers = [t for t in fc3.get("triggers") or [] if t["triggerType"] != "eventbridge"]
    assert sorted(t["triggerName"] for t in triggers) == sorted(events)
    for trigger in triggers:
        event = events[trigger["triggerName"]]
        config = trigger["triggerConfig"]
        assert trigger["triggerType"] == {"HTTP": "http", "Timer": "timer"}[event["Type"]]
        if event["Type"] == "HTTP":
            assert config["authType"] == event["Properties"]["AuthType"].lower()
            assert sorted(config["methods"]) == sorted(event["Properties"]["Methods"])
        else:
            assert config["cronExpression"] == event["Properties"]["CronExpression"]
            assert config["enable"] is event["Properties"]["Enable"]
            assert config["payload"] == event["Properties"]["Payload"]


def test_s_yaml_functions_attach_the_published_layer(s_yaml: dict[str, Any]) -> None:
    """``layers`` holds layer version ARNs (https://github.com/devsapp/fc3, src/schema.json)."""
    from devkit.package import LAYER_NAME

    layer = s_yaml["vars"]["postgresLayer"]
    assert re.fullmatch(rf"{LAYER_NAME}/versions/[1-9][0-9]*", layer)
    for name, props in _fc3(s_yaml).items():
        (arn,) = props["layers"]
        assert arn == "acs:fc:${vars.region}:${config('AccountID')}:layers/${vars.postgresLayer}", name


def test_s_yaml_queue_trigger_never_blocks_the_stream(s_yaml: dict[str, Any]) -> None:
    """VOD's MNS delivery: the trigger reads our queue, tolerates failures, keeps a dead letter."""
    (trigger,) = [t for t in _fc3(s_yaml)["vod_callback"]["triggers"] if t["triggerType"] == "eventbridge"]
    config = trigger["triggerConfig"]
    source = config["eventSourceConfig"]
    assert source["eventSourceType"] == "MNS"
    mns = source["eventSourceParameters"]["sourceMNSParameters"]
    assert _resolve(s_yaml, mns["QueueName"]) and mns["IsBase64Decode"] is False
    run = config["runOptions"]
    assert run["errorsTolerance"] == "ALL" and run["deadLetterQueue"]["Arn"].startswith("acs:mns:")
    assert config["triggerEnable"] is False  # HTTP delivery is the default; the guide says how to switch


def test_s_yaml_custom_domain_agrees_with_template(template: dict[str, Any], s_yaml: dict[str, Any]) -> None:
    domain = next(v["props"] for v in s_yaml["resources"].values() if v["component"] == "fc3-domain")
    fc2 = _domains(template)[0]["Properties"]
    assert domain["protocol"] == fc2["Protocol"]
    names = {props["functionName"]: key for key, props in _fc3(s_yaml).items()}
    routes = {r["path"]: names[_resolve(s_yaml, r["functionName"])] for r in domain["routeConfig"]["routes"]}
    assert routes == ROUTES
    assert _resolve(s_yaml, domain["domainName"]) == next(
        k for k, v in template["Resources"].items() if v.get("Type") == "Aliyun::Serverless::CustomDomain"
    )


# --- docs/DEPLOY.md -------------------------------------------------------------------------------
def test_deploy_guide_policy_matches_template(template: dict[str, Any]) -> None:
    text = (ROOT / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S) if '"Statement"' in b]
    assert blocks, "docs/DEPLOY.md shows no RAM policy"
    documented = {a for b in blocks for s in b["Statement"] for a in s["Action"] if a.startswith("vod:")}
    assert documented == set(_policy_actions(template))


def test_deploy_guide_names_every_environment_variable(template: dict[str, Any]) -> None:
    text = (ROOT / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    names = {n for fn in _functions(template).values() for n in fn["Properties"]["EnvironmentVariables"]}
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"docs/DEPLOY.md does not mention {missing}"
