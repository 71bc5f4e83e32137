//! `GET /v1/openapi.json`: the OpenAPI 3.1 description of the query API,
//! written by hand next to the routes it describes. A test walks the
//! router's route table and checks that every route and method is here.

use axum::Json;
use serde_json::{json, Value};

use super::params::{DEFAULT_LIMIT, MAX_LIMIT};

/// `GET /v1/openapi.json` (no token needed: it describes, it holds no data).
pub(crate) async fn document() -> Json<Value> {
    Json(openapi())
}

fn error(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn filter_parameters() -> Vec<Value> {
    vec![
        query(
            "source",
            "Only this source. A token restricted to some sources sees only those.",
            json!({ "type": "string" }),
        ),
        query("type", "Only this event type.", json!({ "type": "string" })),
        query(
            "since",
            "Received at or after this time (RFC 3339).",
            json!({ "type": "string", "format": "date-time" }),
        ),
        query(
            "until",
            "Received strictly before this time (RFC 3339).",
            json!({ "type": "string", "format": "date-time" }),
        ),
        query(
            "dedup_key",
            "Only events with this deduplication key.",
            json!({ "type": "string" }),
        ),
        query(
            "verified",
            "Only verified (true) or unverified (false) events.",
            json!({ "type": "boolean" }),
        ),
    ]
}

fn id_parameter() -> Value {
    json!({ "name": "id", "in": "path", "required": true, "description": "Event id (UUIDv7).", "schema": { "type": "string" } })
}

fn json_response(description: &str, schema: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn list_operation() -> Value {
    let mut parameters = filter_parameters();
    parameters.push(query(
        "limit",
        "Page size.",
        json!({ "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT }),
    ));
    parameters.push(query(
        "cursor",
        "`next_cursor` of the previous page (same filters).",
        json!({ "type": "string" }),
    ));
    json!({ "get": {
        "operationId": "listEvents",
        "summary": "List events, newest first (received_at, then id), in keyset pages.",
        "parameters": parameters,
        "responses": {
            "200": json_response("A page of events.", "EventList"),
            "400": error("`invalid_filter`, `unknown_parameter`, `invalid_cursor` or `token_in_url`."),
            "401": error("`unauthorized`: missing or unknown bearer token."),
            "403": error("`forbidden`: the token lacks `read` or the source."),
            "503": error("`store_unavailable`."),
        }
    }})
}

fn stream_operation() -> Value {
    json!({ "get": {
        "operationId": "streamEvents",
        "summary": "Live tail of newly indexed events as server-sent events.",
        "description": "`event: webhook` carries an EventSummary (SSE id = event id); `event: lagged` with `{\"skipped\": n}` \
            tells a slow client how many events it missed; comments are heartbeats.",
        "parameters": filter_parameters(),
        "responses": {
            "200": { "description": "An event stream.", "content": { "text/event-stream": { "schema": { "type": "string" } } } },
            "400": error("`invalid_filter`, `unknown_parameter` or `token_in_url`."),
            "401": error("`unauthorized`."),
            "403": error("`forbidden`."),
            "503": error("`too_many_streams`: `query.max_streams` live tails are open; see Retry-After."),
        }
    }})
}

fn event_operations() -> (Value, Value, Value) {
    let not_found = error("`event_not_found`.");
    let get = json!({ "get": {
        "operationId": "getEvent",
        "summary": "One event: metadata, headers, Kafka provenance and body (text when UTF-8, else base64).",
        "parameters": [id_parameter()],
        "responses": { "200": json_response("The event.", "EventDetail"), "401": error("`unauthorized`."),
            "403": error("`forbidden`."), "404": not_found }
    }});
    let body = json!({ "get": {
        "operationId": "getEventBody",
        "summary": "The raw body, byte for byte, with the original Content-Type.",
        "parameters": [id_parameter()],
        "responses": { "200": { "description": "The body.", "content": { "*/*": { "schema": { "type": "string", "format": "binary" } } } },
            "401": error("`unauthorized`."), "403": error("`forbidden`."), "404": error("`event_not_found`.") }
    }});
    let replay = json!({ "post": {
        "operationId": "replayEvent",
        "summary": "Publish the original envelope again (same id, marked as a replay); answers once the broker acked.",
        "parameters": [id_parameter()],
        "responses": { "202": json_response("Published.", "ReplayAccepted"), "401": error("`unauthorized`."),
            "403": error("`forbidden`: the token lacks `replay` or the source, or no token is configured at all."),
            "404": error("`event_not_found`."),
            "503": error("Not acknowledged: `queue_full`, `publish_timeout`, `broker_error` or `producer_fatal`; see Retry-After.") }
    }});
    (get, body, replay)
}

fn reconcile_operation() -> Value {
    json!({ "get": {
        "operationId": "reconcileStatus",
        "summary": "Each source with [sources.reconcile] the token may see: its settings and its last run (what the \
            provider listed, what was missing, what was done).",
        "responses": { "200": json_response("Reconciliation status.", "ReconcileStatus"), "400": error("`unknown_parameter`."),
            "401": error("`unauthorized`."), "403": error("`forbidden`: the token lacks `read`."),
            "503": error("`store_unavailable`.") }
    }})
}

fn reconcile_schemas() -> Value {
    json!({
        "ReconcileAction": { "type": "object", "properties": { "item": { "type": "string", "description": "Delivery guid or event id." },
            "event_type": { "type": "string" }, "action": { "type": "string", "enum": ["redelivery_requested", "published",
            "already_delivered", "already_handled", "in_flight", "would_redeliver", "would_publish", "failed"] },
            "error": { "type": "string", "description": "Error code when `action` is `failed`." } } },
        "ReconcileRun": { "type": "object", "properties": { "source": { "type": "string" }, "provider": { "type": "string" },
            "dry_run": { "type": "boolean" }, "replica": { "type": "string" },
            "started_at": { "type": "string", "format": "date-time" }, "finished_at": { "type": "string", "format": "date-time" },
            "status": { "type": "string", "enum": ["ok", "error"] }, "error": { "type": "string" }, "message": { "type": "string" },
            "checked": { "type": "integer" }, "missing": { "type": "integer" }, "recovered": { "type": "integer" },
            "outstanding": { "type": "integer" },
            "actions": { "type": "array", "maxItems": 100, "items": { "$ref": "#/components/schemas/ReconcileAction" } } } },
        "ReconcileStatus": { "type": "object", "properties": { "sources": { "type": "array", "items": { "type": "object",
            "properties": { "source": { "type": "string" }, "provider": { "type": "string", "enum": ["github", "stripe"] },
            "api": { "type": "string" }, "hook": { "type": ["string", "null"] }, "interval_seconds": { "type": "integer" },
            "lookback_seconds": { "type": "integer" }, "dry_run": { "type": "boolean" },
            "last_run": { "oneOf": [ { "$ref": "#/components/schemas/ReconcileRun" }, { "type": "null" } ] } } } } } },
    })
}

fn schemas() -> Value {
    json!({
        "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object",
            "required": ["code", "message"], "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
        "Verification": { "type": "object", "properties": { "scheme": { "type": "string" }, "verified": { "type": "boolean" },
            "secret_index": { "type": "integer" } } },
        "Kafka": { "type": "object", "properties": { "topic": { "type": "string" }, "partition": { "type": "integer" },
            "offset": { "type": "integer" } } },
        "Header": { "type": "object", "required": ["name"], "description": "`value` when UTF-8, else `value_base64`.",
            "properties": { "name": { "type": "string" }, "value": { "type": "string" }, "value_base64": { "type": "string" } } },
        "EventSummary": { "type": "object", "properties": {
            "id": { "type": "string" }, "source": { "type": "string" }, "event_type": { "type": ["string", "null"] },
            "received_at": { "type": "string", "format": "date-time" }, "received_at_unix_micros": { "type": "integer" },
            "dedup_key": { "type": ["string", "null"] }, "verification": { "$ref": "#/components/schemas/Verification" },
            "method": { "type": "string" }, "path": { "type": "string" }, "query": { "type": "string" },
            "content_type": { "type": "string" }, "client_addr": { "type": "string" }, "body_size": { "type": "integer" },
            "kafka": { "$ref": "#/components/schemas/Kafka" }, "indexed_at": { "type": "string", "format": "date-time" } } },
        "EventDetail": { "allOf": [ { "$ref": "#/components/schemas/EventSummary" }, { "type": "object", "properties": {
            "headers": { "type": "array", "items": { "$ref": "#/components/schemas/Header" } },
            "body_encoding": { "type": "string", "enum": ["utf8", "base64"] }, "body": { "type": "string" } } } ] },
        "EventList": { "type": "object", "properties": {
            "events": { "type": "array", "items": { "$ref": "#/components/schemas/EventSummary" } },
            "next_cursor": { "type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last page." } } },
        "ReplayAccepted": { "type": "object", "properties": { "id": { "type": "string" }, "topic": { "type": "string" },
            "partition": { "type": "integer" }, "offset": { "type": "integer" }, "replay": { "type": "boolean", "const": true } } },
    })
}

fn merged(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// The whole document.
pub fn openapi() -> Value {
    let (get, body, replay) = event_operations();
    json!({
        "openapi": "3.1.0",
        "info": { "title": "hookgate query API", "version": env!("CARGO_PKG_VERSION"),
            "description": "History of the webhooks hookgate published to Kafka. Errors: {\"error\":{\"code\",\"message\"}}. \
                Without configured tokens every route answers 403 `host_not_allowed` unless the request names a loopback host." },
        "security": [ { "bearer": [] } ],
        "paths": {
            "/v1/events": list_operation(),
            "/v1/events/stream": stream_operation(),
            "/v1/events/{id}": get,
            "/v1/events/{id}/body": body,
            "/v1/events/{id}/replay": replay,
            "/v1/reconcile": reconcile_operation(),
            "/v1/openapi.json": { "get": { "operationId": "openapi", "summary": "This document.", "security": [],
                "responses": { "200": { "description": "OpenAPI 3.1 document.", "content": { "application/json": {} } } } } },
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer",
                "description": "A token from [[query.tokens]]; scopes `read` (GETs) and `replay` (POST replay)." } },
            "schemas": merged(schemas(), reconcile_schemas()),
        }
    })
}
