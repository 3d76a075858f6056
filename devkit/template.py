"""Read ``template.yml`` (FC 2.0, Funcraft/ROS): the one source of truth for routes, handlers, cron."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yml"


@dataclass(frozen=True)
class Timer:
    """One timer trigger: its name, FC cron expression and payload."""

    name: str
    cron: str
    payload: str | None = None


@dataclass(frozen=True)
class Function:
    name: str
    handler: str  # "index.handler"
    runtime: str
    environment: dict[str, Any]
    http_methods: tuple[str, ...] = ()
    timers: tuple[Timer, ...] = ()


@dataclass(frozen=True)
class Template:
    service: str
    functions: dict[str, Function]
    routes: dict[str, str] = field(default_factory=dict)  # path pattern -> function name

    def route(self, path: str) -> str | None:
        """The function a custom-domain path goes to (exact paths first, then ``/prefix/*``)."""
        if path in self.routes:
            return self.routes[path]
        best: tuple[int, str] | None = None
        for pattern, fn in self.routes.items():
            prefix_match = pattern.endswith("/*") and path.startswith(pattern[:-1])
            if prefix_match and (best is None or len(pattern) > best[0]):
                best = (len(pattern), fn)
        return best[1] if best else None


def load_template(path: Path = TEMPLATE) -> Template:
    """Parse the template into services, functions, HTTP routes and timers."""
    import yaml

    doc = yaml.safe_load(path.read_text())
    resources: dict[str, Any] = doc["Resources"]
    service_name = ""
    functions: dict[str, Function] = {}
    routes: dict[str, str] = {}
    for name, res in resources.items():
        kind = res.get("Type")
        if kind == "Aliyun::Serverless::Service":
            service_name = name
            for fn_name, fn in res.items():
                if not isinstance(fn, dict) or fn.get("Type") != "Aliyun::Serverless::Function":
                    continue
                props = fn["Properties"]
                methods: tuple[str, ...] = ()
                timers: list[Timer] = []
                for trigger_name, trig in (fn.get("Events") or {}).items():
                    if trig["Type"] == "HTTP":
                        methods = tuple(trig["Properties"]["Methods"])
                    elif trig["Type"] == "Timer":
                        props_t = trig["Properties"]
                        timers.append(Timer(trigger_name, props_t["CronExpression"], props_t.get("Payload")))
                functions[fn_name] = Function(
                    name=fn_name,
                    handler=props["Handler"],
                    runtime=props["Runtime"],
                    environment=dict(props.get("EnvironmentVariables") or {}),
                    http_methods=methods,
                    timers=tuple(timers),
                )
        elif kind == "Aliyun::Serverless::CustomDomain":
            for pattern, target in res["Properties"]["RouteConfig"]["Routes"].items():
                routes[pattern] = target["FunctionName"]
    return Template(service=service_name, functions=functions, routes=routes)


_EVERY = re.compile(r"^@every\s+((?:\d+[hms])+)$")


def next_fire(cron: str, after: datetime) -> datetime:
    """Next time an FC timer fires: ``@every 5m`` or 6-field cron (seconds first), UTC or CRON_TZ."""
    expr = cron.strip()
    every = _EVERY.match(expr)
    if every:
        seconds = sum(
            int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in re.findall(r"(\d+)([hms])", every.group(1))
        )
        return after + timedelta(seconds=max(seconds, 1))
    tz: Any = timezone.utc
    if expr.startswith("CRON_TZ="):
        from zoneinfo import ZoneInfo

        zone, expr = expr[len("CRON_TZ=") :].split(None, 1)
        tz = ZoneInfo(zone)
    from croniter import croniter

    nxt: datetime = croniter(expr, after.astimezone(tz), second_at_beginning=True).get_next(datetime)
    return nxt.astimezone(timezone.utc)
