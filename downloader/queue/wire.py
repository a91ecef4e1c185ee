"""Progress events and control requests as JSON, to travel between processes."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

from downloader import events as ev

# Events that cross to the bot (ItemProgress stays home: no status message shows bytes).
RELAYED = (ev.JobStarted, ev.PhaseStarted, ev.ItemDone, ev.Waiting, ev.Warned, ev.PhaseFinished)
RELAYED += (ev.JobFinished,)
TYPES = {cls.__name__: cls for cls in RELAYED}
LIMIT = 7000  # PostgreSQL NOTIFY takes at most 8000 bytes


def dumps(event) -> str | None:
    """The event as JSON (warnings trimmed to fit), or None for events that stay in the worker."""
    name = type(event).__name__
    if name not in TYPES:
        return None
    data = _plain(event)
    text = json.dumps({"type": name, "data": data}, default=str)
    if len(text) > LIMIT:  # long warning lists: the job row keeps them all
        _drop_warnings(data)
        text = json.dumps({"type": name, "data": data}, default=str)
    return text


def loads(text: str):
    """The event a worker sent."""
    message = json.loads(text)
    data = message["data"]
    name = message["type"]
    if name == "Waiting":
        data["until"] = datetime.fromisoformat(data["until"])
    elif name == "JobStarted":
        data["phases"] = tuple(data["phases"])
    elif name == "PhaseFinished":
        data["result"] = ev.PhaseResult.from_dict(data["result"])
    elif name == "JobFinished":
        result = data["result"]
        result["phases"] = [ev.PhaseResult.from_dict(p) for p in result["phases"]]
        data["result"] = ev.JobResult(**result)
    return TYPES[name](**data)


def _plain(event) -> dict:
    data = dataclasses.asdict(event)
    if isinstance(getattr(event, "until", None), datetime):
        data["until"] = event.until.isoformat()
    return data


def _drop_warnings(data: dict) -> None:
    results = [data["result"]] if "result" in data else []
    for result in results:
        for phase in result.get("phases", [result]):
            phase["warnings"] = phase.get("warnings", [])[-2:]
            phase["missed"] = phase.get("missed", [])[: ev.MISSED_SHOWN]  # all the summary names
            phase["message"] = (phase.get("message") or "")[:500] or None


def control_dumps(job_id: int, state: str) -> str:
    """A pause / cancel request for one job."""
    return json.dumps({"job": job_id, "state": state})


def control_loads(text: str) -> tuple[int, str]:
    """(job id, requested state)."""
    message = json.loads(text)
    return int(message["job"]), str(message["state"])
