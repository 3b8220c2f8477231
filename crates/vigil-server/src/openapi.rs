//! Builds the OpenAPI 3.1 document from the route table ([`crate::routes`]).

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::api::ErrorBody;
use crate::routes::{Access, Answer, RouteSpec};

/// The document for `specs`, with schemas for every body, query and answer type.
pub fn document(specs: &[RouteSpec], version: &str) -> Value {
    let mut generator =
        SchemaSettings::draft2020_12().with(|s| s.definitions_path = "/components/schemas".into()).into_generator();
    let error_schema = generator.subschema_for::<ErrorBody>();
    let mut paths = Map::new();
    for spec in specs {
        let mut op = Map::new();
        op.insert("operationId".into(), json!(spec.operation));
        op.insert("summary".into(), json!(spec.summary));
        let tag = spec.path.trim_start_matches("/api/v1").split('/').find(|s| !s.is_empty()).unwrap_or("root");
        op.insert("tags".into(), json!([tag]));
        match spec.access {
            Access::Public => {
                op.insert("security".into(), json!([]));
            }
            Access::Scope(scope) => {
                op.insert("security".into(), json!([{ "apiKey": [] }, { "bearer": [] }]));
                op.insert("x-vigil-scope".into(), json!(scope.as_str()));
            }
        }
        if spec.model_call {
            // Answers (errors included) come in the model provider's shape, not Vigil's.
            op.insert("x-vigil-model-call".into(), json!(true));
        }

        let mut parameters: Vec<Value> = spec
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| name.trim_start_matches('*'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if let Some(query) = spec.query {
            let schema = query(&mut generator);
            let resolved = resolve(&schema, &generator);
            let required: Vec<&str> = resolved
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = resolved.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    let mut param = json!({
                        "name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": prop,
                    });
                    if let Some(description) = prop.get("description") {
                        param["description"] = description.clone();
                    }
                    parameters.push(param);
                }
            }
        }
        if !parameters.is_empty() {
            op.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some(body) = spec.body {
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": body(&mut generator).to_value() } } }),
            );
        } else if spec.streamed_body {
            // Empty content is refused (422): there is nothing to store.
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary", "minLength": 1 } } } }),
            );
        } else if let Some(body) = spec.documented_body {
            op.insert("requestBody".into(), body());
        }
        let content = match spec.answer {
            Answer::Json(schema) => json!({ "application/json": { "schema": schema(&mut generator).to_value() } }),
            Answer::Raw(media) => json!({ media: {} }),
            Answer::Media(media_types) => {
                Value::Object(media_types.iter().map(|m| ((*m).to_owned(), json!({}))).collect())
            }
        };
        let mut responses = Map::new();
        responses.insert(spec.success_status.to_string(), json!({ "description": spec.summary, "content": content }));
        let error = if let Some(errors) = spec.documented_errors {
            errors()
        } else if spec.model_call {
            json!({ "description": "error, in the provider's shape", "content": { "application/json": { "schema": provider_error_schema() } } })
        } else {
            json!({ "description": "error", "content": { "application/json": { "schema": error_schema.clone().to_value() } } })
        };
        responses.insert("4XX".into(), error.clone());
        responses.insert("5XX".into(), error);
        op.insert("responses".into(), Value::Object(responses));

        let entry = paths.entry(document_path(spec.path)).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(spec.method.as_str().to_ascii_lowercase(), Value::Object(op));
        }
    }
    let schemas = generator.take_definitions(true);
    let mut paths = Value::Object(paths);
    let mut schemas = Value::Object(schemas);
    bound_integers(&mut paths);
    bound_integers(&mut schemas);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Vigil API",
            "version": version,
            "description": "Every JSON success body is {\"data\", \"provenance\"}; every error is {\"error\": {\"code\", \"message\", \"details\"}}. Lists are paged with an opaque `cursor`.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key" },
                "bearer": { "type": "http", "scheme": "bearer" },
            },
        },
    })
}

/// The error bodies model calls answer with, as the SDKs of the APIs they imitate read them:
/// OpenAI's `{"error": {"message", "type", "param", "code"}}` or Anthropic's `{"type":
/// "error", "error": {"type", "message"}}`.
fn provider_error_schema() -> Value {
    json!({
        "anyOf": [
            {
                "type": "object",
                "required": ["error"],
                "properties": { "error": {
                    "type": "object",
                    "required": ["message", "type"],
                    "properties": { "message": { "type": "string" }, "type": { "type": "string" }, "param": {}, "code": {} },
                } },
            },
            {
                "type": "object",
                "required": ["type", "error"],
                "properties": {
                    "type": { "const": "error" },
                    "error": {
                        "type": "object",
                        "required": ["type", "message"],
                        "properties": { "type": { "type": "string" }, "message": { "type": "string" } },
                    },
                },
            },
        ],
    })
}

/// An OTLP/HTTP export request. Protobuf (`application/x-protobuf`) is the usual encoding;
/// the JSON encoding is declared with its top-level shape (the protocol's own schema is
/// protobuf, and OTLP receivers ignore fields they do not know).
pub fn otlp_request_body() -> Value {
    json!({
        "required": true,
        "content": {
            "application/json": { "schema": {
                "type": "object",
                // Proto3's JSON mapping reads `null` as the field's default.
                "properties": { "resourceSpans": { "type": ["array", "null"], "items": { "type": "object" } } },
            } },
            "application/x-protobuf": { "schema": { "type": "string", "format": "binary" } },
        },
    })
}

/// An OTLP/HTTP error: a `google.rpc.Status`, in the encoding the request came in; refusals
/// before the receiver (authentication, rate limits, body size) are Vigil's own errors.
pub fn otlp_error() -> Value {
    json!({
        "description": "error, as an OTLP google.rpc.Status, or Vigil's error when refused before the receiver",
        "content": {
            "application/json": { "schema": { "anyOf": [
                {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": { "code": { "type": "integer" }, "message": { "type": "string" }, "details": { "type": "array" } },
                },
                { "$ref": "#/components/schemas/ErrorBody" },
            ] } },
            "application/x-protobuf": {},
        },
    })
}

/// Gives every integer with a fixed-width `format` the bounds of that width, which the
/// server enforces when it parses the number (schemars names the format but not the range).
fn bound_integers(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let is_integer = match object.get("type") {
                Some(Value::String(t)) => t == "integer",
                Some(Value::Array(types)) => types.iter().any(|t| t == "integer"),
                _ => false,
            };
            let range = object.get("format").and_then(Value::as_str).and_then(|format| match format {
                "uint8" => Some((json!(0), json!(u8::MAX))),
                "uint16" => Some((json!(0), json!(u16::MAX))),
                "uint32" => Some((json!(0), json!(u32::MAX))),
                "uint64" | "uint" => Some((json!(0), json!(u64::MAX))),
                "int8" => Some((json!(i8::MIN), json!(i8::MAX))),
                "int16" => Some((json!(i16::MIN), json!(i16::MAX))),
                "int32" => Some((json!(i32::MIN), json!(i32::MAX))),
                "int64" | "int" => Some((json!(i64::MIN), json!(i64::MAX))),
                _ => None,
            });
            if let (true, Some((min, max))) = (is_integer, range) {
                object.entry("minimum").or_insert(min);
                object.entry("maximum").or_insert(max);
            }
            object.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// Follows a `$ref` into the generator's definitions.
fn resolve(schema: &schemars::Schema, generator: &schemars::SchemaGenerator) -> Value {
    let value = schema.clone().to_value();
    let name = value.get("$ref").and_then(Value::as_str).and_then(|r| r.rsplit('/').next()).map(str::to_owned);
    match name {
        Some(name) => generator.definitions().get(&name).cloned().unwrap_or(value),
        None => value,
    }
}

/// A route path as OpenAPI writes it: axum's catch-all `{*rest}` is the parameter `{rest}`.
pub fn document_path(path: &str) -> String {
    path.replace("{*", "{")
}
