//! A small Confluent Schema Registry for the tests: the subset of its REST
//! API v1 (as documented for Confluent Platform 7.x) that hookgate and the
//! Confluent clients use, on a loopback port:
//! `POST /subjects/{subject}/versions` (same schema, same id; 409 for a
//! subject told to refuse; 422 for a schema that is not PROTOBUF),
//! `GET /schemas/ids/{id}` (with `?format=serialized`: the base64
//! `FileDescriptorProto`, compiled here with protox as the registry would),
//! `GET /subjects/{subject}/versions/latest`, HTTP Basic authentication, and
//! Confluent's JSON 404 for every other path.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use prost::Message as _;
use serde_json::{json, Value};

/// What the registry holds and saw.
#[derive(Debug, Default)]
pub struct RegistryState {
    /// Schema texts; the id of `schemas[i]` is `i + 1`.
    pub schemas: Vec<String>,
    /// Ids registered under each subject, oldest version first.
    pub subjects: HashMap<String, Vec<u32>>,
    /// Subjects whose compatibility check refuses every new schema (409).
    pub incompatible: HashSet<String>,
    /// `user:password` every request must present, when set.
    pub basic_auth: Option<String>,
    /// Every request as "METHOD path?query".
    pub requests: Vec<String>,
}

/// A running registry; it stops with the test's runtime.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Its address.
    pub addr: SocketAddr,
    /// Its state, shared with the handlers.
    pub state: Arc<Mutex<RegistryState>>,
}

type Shared = Arc<Mutex<RegistryState>>;
type Answer = (StatusCode, Json<Value>);

impl Registry {
    /// Starts a registry on a free loopback port with `state`.
    pub async fn start(state: RegistryState) -> Registry {
        let state = Arc::new(Mutex::new(state));
        let app = Router::new()
            .route("/subjects/{subject}/versions", post(register))
            .route("/subjects/{subject}/versions/latest", get(latest))
            .route("/schemas/ids/{id}", get(by_id))
            .fallback(not_found)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Registry { addr, state }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The ids registered under `subject`.
    pub fn ids(&self, subject: &str) -> Vec<u32> {
        self.state
            .lock()
            .unwrap()
            .subjects
            .get(subject)
            .cloned()
            .unwrap_or_default()
    }

    /// The requests seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn error(status: StatusCode, code: u32, message: String) -> Answer {
    (status, Json(json!({ "error_code": code, "message": message })))
}

/// Any other path, e.g. `/associations/...`, which recent Confluent clients
/// ask first and treat a 404 as "none".
async fn not_found(State(state): State<Shared>, uri: axum::http::Uri) -> Answer {
    state.lock().unwrap().requests.push(format!("GET {uri}"));
    error(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found".into())
}

/// Checks Basic authentication and logs the request.
fn admit(state: &mut RegistryState, headers: &HeaderMap, line: String) -> Result<(), Answer> {
    state.requests.push(line);
    let Some(expected) = &state.basic_auth else {
        return Ok(());
    };
    let wanted = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(expected));
    match headers.get("authorization") {
        Some(value) if value.as_bytes() == wanted.as_bytes() => Ok(()),
        _ => Err(error(StatusCode::UNAUTHORIZED, 401, "Unauthorized".into())),
    }
}

async fn register(
    State(state): State<Shared>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Answer {
    let mut state = state.lock().unwrap();
    if let Err(answer) = admit(&mut state, &headers, format!("POST /subjects/{subject}/versions")) {
        return answer;
    }
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    let (Some("PROTOBUF"), Some(schema)) = (request["schemaType"].as_str(), request["schema"].as_str()) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "Invalid schema".into());
    };
    let existing = state.schemas.iter().position(|s| s == schema).map(|i| i as u32 + 1);
    let versions = state.subjects.get(&subject).cloned().unwrap_or_default();
    if let Some(id) = existing.filter(|id| versions.contains(id)) {
        return (StatusCode::OK, Json(json!({ "id": id })));
    }
    if state.incompatible.contains(&subject) {
        let message =
            format!("Schema being registered is incompatible with an earlier schema for subject \"{subject}\"");
        return error(StatusCode::CONFLICT, 409, message);
    }
    let id = existing.unwrap_or_else(|| {
        state.schemas.push(schema.to_owned());
        state.schemas.len() as u32
    });
    state.subjects.entry(subject).or_default().push(id);
    (StatusCode::OK, Json(json!({ "id": id })))
}

async fn latest(State(state): State<Shared>, Path(subject): Path<String>, headers: HeaderMap) -> Answer {
    let mut state = state.lock().unwrap();
    if let Err(answer) = admit(&mut state, &headers, format!("GET /subjects/{subject}/versions/latest")) {
        return answer;
    }
    let Some(versions) = state.subjects.get(&subject) else {
        return error(StatusCode::NOT_FOUND, 40401, format!("Subject '{subject}' not found."));
    };
    let id = *versions.last().unwrap();
    let schema = state.schemas[id as usize - 1].clone();
    let body =
        json!({ "subject": subject, "version": versions.len(), "id": id, "schemaType": "PROTOBUF", "schema": schema });
    (StatusCode::OK, Json(body))
}

async fn by_id(
    State(state): State<Shared>,
    Path(id): Path<u32>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Answer {
    let mut state = state.lock().unwrap();
    let format = query.get("format").cloned().unwrap_or_default();
    if let Err(answer) = admit(&mut state, &headers, format!("GET /schemas/ids/{id}?format={format}")) {
        return answer;
    }
    let Some(text) = state.schemas.get((id as usize).wrapping_sub(1)).cloned() else {
        return error(StatusCode::NOT_FOUND, 40403, format!("Schema {id} not found"));
    };
    let schema = if format == "serialized" {
        serialized(&text)
    } else {
        text
    };
    (
        StatusCode::OK,
        Json(json!({ "schemaType": "PROTOBUF", "schema": schema })),
    )
}

/// The schema as a base64 `FileDescriptorProto`, what Confluent's registry
/// answers to `format=serialized`.
fn serialized(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = "hookgate/v1/envelope.proto";
    std::fs::create_dir_all(dir.path().join("hookgate/v1")).unwrap();
    std::fs::write(dir.path().join(file), text).unwrap();
    let set = protox::compile([file], [dir.path()]).expect("the registered schema compiles");
    let descriptor = set.file.iter().find(|f| f.name() == file).unwrap();
    base64::engine::general_purpose::STANDARD.encode(descriptor.encode_to_vec())
}
