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
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } }),
            );
        }
        let content = match spec.answer {
            Answer::Json(schema) => json!({ "application/json": { "schema": schema(&mut generator).to_value() } }),
            Answer::Raw(media) => json!({ media: {} }),
        };
        let mut responses = Map::new();
        responses.insert(spec.success_status.to_string(), json!({ "description": spec.summary, "content": content }));
        let error = json!({ "description": "error", "content": { "application/json": { "schema": error_schema.clone().to_value() } } });
        responses.insert("4XX".into(), error.clone());
        responses.insert("5XX".into(), error);
        op.insert("responses".into(), Value::Object(responses));

        let entry = paths.entry(document_path(spec.path)).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(spec.method.as_str().to_ascii_lowercase(), Value::Object(op));
        }
    }
    let schemas = generator.take_definitions(true);
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
