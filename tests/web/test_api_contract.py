"""What the OpenAPI document says is what the API does, point by point (the whole-API run with schemathesis is
tests/reliability/test_openapi_contract.py):

- each Server-Sent Event the server sends validates against the stream's ``itemSchema`` (its data against
  the event's own schema);
- JSON types are strict: a boolean is not a number, a number is not a string (422 naming the field);
- every text field of a request says it holds no NUL, and each one refuses it;
- the cursor and the job id have the form the document states: every string of that form is accepted,
  anything else refused without reaching the database;
- links lead from a created job, and from the list, to the job's routes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from agentic.web.params import CURSOR_PATTERN, JOB_ID_PATTERN
from tests.web.support import SLOW_MODEL, Api, EventLog, auth, chat

COMPLETED = {"id": "r1", "model": SLOW_MODEL, "content": "Hello world", "provider": "mock"}


def _document(api: Api) -> dict[str, Any]:
    document = api.client.get("/api/openapi.json").json
    assert isinstance(document, dict)
    return document


def _validator(schema: dict[str, Any], document: dict[str, Any]) -> Draft202012Validator:
    """A validator for ``schema`` whose ``#/components/...`` refs resolve in ``document``."""
    return Draft202012Validator({**schema, "components": document["components"]}, format_checker=FormatChecker())


def _sse(body: str) -> list[dict[str, str]]:
    """The events of a stream as an SSE parser reads them (comments and data-less blocks dropped)."""
    events = []
    for block in body.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        if "data" in fields:
            events.append(fields)
    return events


def _event_errors(event: dict[str, str], document: dict[str, Any]) -> list[str]:
    content = document["paths"]["/api/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    item_schema = content["text/event-stream"]["itemSchema"]
    errors = [e.message for e in _validator(item_schema, document).iter_errors(event)]
    branch = next((b for b in item_schema["oneOf"] if b["properties"]["event"]["const"] == event.get("event")),
                  None)
    if branch is None:
        return [*errors, f"no schema for event {event.get('event')!r}"]
    data_schema = branch["properties"]["data"]["contentSchema"]
    return errors + [e.message for e in _validator(data_schema, document).iter_errors(json.loads(event["data"]))]


# ---- the event stream --------------------------------------------------------------------------------


def test_every_kind_of_event_the_stream_sends_validates_against_the_item_schema(queued_api: Api) -> None:
    secret = queued_api.key()
    job_id = queued_api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL),
                                    headers=auth(secret)).json["job_id"]
    store = queued_api.container.jobs
    store.start(job_id)
    store.append_progress(job_id, "first try")
    store.record_attempt(job_id)
    store.reset_progress(job_id)
    store.append_progress(job_id, "second")
    store.complete(job_id, COMPLETED)
    # The client holds 9 characters of the first attempt: reset, the new text, the final status, done.
    response = queued_api.client.get(f"/api/jobs/{job_id}/events",
                                     headers=auth(secret) | {"Last-Event-ID": "processing.1.9"})
    events = _sse(response.get_data(as_text=True))
    document = _document(queued_api)

    assert [e["event"] for e in events] == ["reset", "delta", "status", "done"]
    assert {e["event"]: _event_errors(e, document) for e in events} == {
        "reset": [], "delta": [], "status": [], "done": []}


@pytest.mark.parametrize(("event", "valid"), [
    ({"event": "delta", "id": "processing.1.3", "data": '{"text": "abc"}'}, True),
    ({"event": "delta", "id": "processing.1.3", "data": '{"text": 5}'}, False),
    ({"event": "delta", "id": "later", "data": '{"text": "abc"}'}, False),
    ({"event": "reset", "id": "processing.3.12", "data": '{"attempts": 3, "offset": 12}'}, True),
    ({"event": "reset", "id": "processing.3.0", "data": '{"attempts": 3}'}, False),  # the server always says the offset
    ({"event": "reset", "id": "processing.3.0", "data": '{"attempts": 3, "offset": -1}'}, False),
    ({"event": "status", "id": "pending.0.0", "data": '{"status": "waiting", "attempts": 0, '
                                                      '"updated_at": "2026-01-01T00:00:00Z"}'}, False),
    ({"event": "message", "id": "pending.0.0", "data": "{}"}, False),
])
def test_the_item_schema_tells_good_events_from_bad_ones(api: Api, event: dict[str, str], valid: bool) -> None:
    # A reset may carry the offset a continued attempt keeps (0: start over).
    assert (_event_errors(event, _document(api)) == []) is valid


# ---- strict JSON types --------------------------------------------------------------------------------

MISTYPED: list[tuple[str, dict[str, Any], str]] = [
    ("boolean penalty", chat(model=SLOW_MODEL, presence_penalty=False), "presence_penalty"),
    ("boolean temperature", chat(model=SLOW_MODEL, temperature=True), "temperature"),
    ("string temperature", chat(model=SLOW_MODEL, temperature="0.5"), "temperature"),
    ("string top_p", chat(model=SLOW_MODEL, top_p="1"), "top_p"),
    ("fractional max_tokens", chat(model=SLOW_MODEL, max_tokens=5.5), "max_tokens"),
    ("string max_tokens", chat(model=SLOW_MODEL, max_tokens="5"), "max_tokens"),
    ("boolean max_tokens", chat(model=SLOW_MODEL, max_tokens=True), "max_tokens"),
    ("number content", {"model": SLOW_MODEL, "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ("number stop", chat(model=SLOW_MODEL, stop=[1]), "stop.0"),
    ("number model", {"model": 5, "messages": [{"role": "user", "content": "hi"}]}, "model"),
]


@pytest.mark.parametrize(("case", "body", "field"), MISTYPED, ids=[case for case, _, _ in MISTYPED])
def test_a_value_of_the_wrong_json_type_is_422_naming_the_field(
        queued_api: Api, events: EventLog, case: str, body: dict[str, Any], field: str) -> None:
    response = queued_api.client.post("/api/llm/generate", json=body, headers=auth(queued_api.key()))
    assert response.status_code == 422, response.json
    assert response.json["field"] == field
    assert queued_api.jobs_count() == 0 and events.events == []


def test_preview_fields_are_strict_too(queued_api: Api) -> None:
    response = queued_api.client.post("/api/previews", json={"title": 5, "content": "text"},
                                      headers=auth(queued_api.key()))
    assert response.status_code == 422 and response.json["field"] == "title"


def test_numbers_are_numbers_whatever_their_spelling(queued_api: Api) -> None:
    """An integer where a number is expected is a number; 5.0 is an integer (JSON Schema says so)."""
    response = queued_api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL, temperature=1, max_tokens=5.0),
                                      headers=auth(queued_api.key()))
    assert response.status_code == 202, response.json
    stored = queued_api.container.jobs.get(response.json["job_id"])
    assert stored is not None
    assert stored.request["max_tokens"] == 5 and isinstance(stored.request["max_tokens"], int)
    assert stored.request["temperature"] == 1.0


# ---- NUL in text --------------------------------------------------------------------------------------


def _string_fields(schema: dict[str, Any], document: dict[str, Any], path: str = "") -> dict[str, dict[str, Any]]:
    """Every string-typed field under ``schema``, by dotted path (array items as ``0``)."""
    if "$ref" in schema:
        return _string_fields(document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], document, path)
    found: dict[str, dict[str, Any]] = {}
    for option in schema.get("anyOf", []):
        found |= _string_fields(option, document, path)
    if schema.get("type") == "string":
        found[path] = schema
    for name, sub in schema.get("properties", {}).items():
        found |= _string_fields(sub, document, f"{path}.{name}".lstrip("."))
    if isinstance(schema.get("items"), dict):
        found |= _string_fields(schema["items"], document, f"{path}.0".lstrip("."))
    return found


TEXT_FIELDS = {
    "/api/llm/generate": {"messages.0.content", "stop.0", "context.0.title", "context.0.content"},
    "/api/previews": {"title", "content"},
}


def _with(body: dict[str, Any], path: str, value: str) -> dict[str, Any]:
    body = json.loads(json.dumps(body))
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    target = body
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return body


def test_every_text_field_states_that_it_holds_no_nul(api: Api) -> None:
    document = _document(api)
    for path, text_fields in TEXT_FIELDS.items():
        schema = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        strings = _string_fields(schema, document)
        # Free text says so; the other strings (the model id, the role) have a form that excludes NUL anyway.
        assert {name for name, s in strings.items() if s.get("not") == {"pattern": "\\u0000"}} == text_fields
        for name, field_schema in strings.items():
            assert not _validator(field_schema, document).is_valid("a\x00b"), name
        for name in text_fields:
            assert _validator(strings[name], document).is_valid("a b"), name


BASES = {"/api/llm/generate": chat(model=SLOW_MODEL, stop=["x"], context=[{"title": "t", "content": "c"}]),
         "/api/previews": {"title": "t", "content": "c"}}


@pytest.mark.parametrize(("path", "field"), [(p, f) for p, fields in TEXT_FIELDS.items() for f in sorted(fields)])
def test_nul_in_any_text_field_is_422_naming_it(queued_api: Api, path: str, field: str) -> None:
    response = queued_api.client.post(path, json=_with(BASES[path], field, "a\x00b"), headers=auth(queued_api.key()))
    assert response.status_code == 422 and response.json["field"] == field, response.json
    assert queued_api.jobs_count() == 0


# ---- the cursor and the job id ------------------------------------------------------------------------


def _parameter(document: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    return next(p for p in document["paths"][path][method]["parameters"] if p["name"] == name)


def test_the_cursor_the_api_issues_has_the_form_the_document_states(queued_api: Api) -> None:
    secret = queued_api.key()
    ids = [queued_api.client.post("/api/llm/generate", json=chat(f"job {n}", model=SLOW_MODEL),
                                  headers=auth(secret)).json["job_id"] for n in range(3)]
    pattern = _parameter(_document(queued_api), "/api/jobs", "get", "cursor")["schema"]["pattern"]
    assert pattern == CURSOR_PATTERN

    first = queued_api.client.get("/api/jobs?limit=2", headers=auth(secret)).json
    assert re.fullmatch(pattern, first["next_cursor"])
    second = queued_api.client.get(f"/api/jobs?limit=2&cursor={first['next_cursor']}", headers=auth(secret)).json
    assert [j["id"] for j in first["items"] + second["items"]] == ids[::-1] and second["next_cursor"] is None


def test_any_cursor_of_that_form_is_a_position_and_any_other_is_refused(queued_api: Api) -> None:
    secret = queued_api.key()
    job_id = queued_api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL),
                                    headers=auth(secret)).json["job_id"]
    never_issued = {"0.a": [], "99999999999999999.zz": [job_id]}  # before 1970: nothing; year 5138: everything
    for cursor, expected in never_issued.items():
        response = queued_api.client.get(f"/api/jobs?cursor={cursor}", headers=auth(secret))
        assert response.status_code == 200 and [j["id"] for j in response.json["items"]] == expected
    for forged in ["", "12", "12.", ".job", "1.job id", "123456789012345678.x", "1.job%0A", "MjAyNi0x"]:
        response = queued_api.client.get(f"/api/jobs?cursor={forged}", headers=auth(secret))
        assert response.status_code == 422 and response.json["field"] == "cursor", forged


@pytest.mark.parametrize("query", ["status=", "limit=", "limit=5_0", "limit=%205", "limit=%D9%A5"])
def test_an_empty_or_loosely_spelt_list_parameter_is_refused(queued_api: Api, query: str) -> None:
    response = queued_api.client.get(f"/api/jobs?{query}", headers=auth(queued_api.key()))
    assert response.status_code == 422 and response.json["field"] == query.split("=", maxsplit=1)[0]


@pytest.mark.parametrize("job_id", ["ab%00c", "job%20one", "job.1", "x" * 101])
@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("GET", "/events"), ("POST", "/cancel")])
def test_a_job_id_not_of_the_issued_form_is_no_job(api: Api, job_id: str, method: str, suffix: str) -> None:
    """404 like any missing job, without a query: NUL would make PostgreSQL fail (a 500 before)."""
    assert _parameter(_document(api), "/api/jobs/{job_id}", "get", "job_id")["schema"]["pattern"] == JOB_ID_PATTERN
    response = api.client.open(f"/api/jobs/{job_id}{suffix}", method=method, headers=auth(api.key()))
    assert response.status_code == 404 and response.json["code"] == "job_not_found"


def test_issued_job_ids_have_the_documented_form(queued_api: Api) -> None:
    answer = queued_api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL), headers=auth(queued_api.key()))
    assert re.fullmatch(JOB_ID_PATTERN, answer.json["job_id"])


# ---- links --------------------------------------------------------------------------------------------


def test_links_lead_from_a_created_job_and_from_the_list_to_the_job_routes(api: Api) -> None:
    document = _document(api)
    operations = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    for path in ("/api/llm/generate", "/api/previews"):
        links = document["paths"][path]["post"]["responses"]["202"]["links"]
        assert {name: (link["operationId"], link["parameters"]) for name, link in links.items()} == {
            op: (op, {"job_id": "$response.body#/job_id"}) for op in ("getJob", "streamJobEvents", "cancelJob")}
    listed = document["paths"]["/api/jobs"]["get"]["responses"]["200"]["links"]
    assert listed["getJob"]["parameters"] == {"job_id": "$response.body#/items/0/id"}
    linked = {link["operationId"] for item in document["paths"].values() for op in item.values()
              for answer in op["responses"].values() for link in answer.get("links", {}).values()}
    assert linked <= operations

