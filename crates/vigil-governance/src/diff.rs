//! What changed between two versions of a document, value by value: the diff every saved
//! version is shown with. Entries of a list that all carry an `id` are matched by it (so
//! moving a rule is not a change to every rule after it) and named by it in the path:
//! `rules[no-gpt].priority`.

use serde::Serialize;
use serde_json::{Map, Value};

/// One value added, removed or changed.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Change {
    pub path: String,
    /// Absent when the value was added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// Absent when the value was removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// The changes from `before` to `after`, in the order the documents hold their values.
pub fn changes(before: &Value, after: &Value) -> Vec<Change> {
    // A first version (or a removal of everything) is one change: the whole document.
    match (before, after) {
        (Value::Null, Value::Null) => return Vec::new(),
        (Value::Null, a) => return vec![Change { path: String::new(), before: None, after: Some(a.clone()) }],
        (b, Value::Null) => return vec![Change { path: String::new(), before: Some(b.clone()), after: None }],
        _ => {}
    }
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn walk(path: &str, before: &Value, after: &Value, out: &mut Vec<Change>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => objects(path, b, a, out),
        (Value::Array(b), Value::Array(a)) => match (by_id(b), by_id(a)) {
            (Some(b), Some(a)) => keyed(path, &b, &a, out),
            _ => indexed(path, b, a, out),
        },
        (b, a) if b == a => {}
        (b, a) => out.push(Change { path: path.to_owned(), before: Some(b.clone()), after: Some(a.clone()) }),
    }
}

fn objects(path: &str, before: &Map<String, Value>, after: &Map<String, Value>, out: &mut Vec<Change>) {
    for (key, b) in before {
        match after.get(key) {
            Some(a) => walk(&join(path, key), b, a, out),
            None => out.push(Change { path: join(path, key), before: Some(b.clone()), after: None }),
        }
    }
    for (key, a) in after.iter().filter(|(k, _)| !before.contains_key(*k)) {
        out.push(Change { path: join(path, key), before: None, after: Some(a.clone()) });
    }
}

/// The entries by their `id`, when every entry is an object with a distinct string id.
fn by_id(items: &[Value]) -> Option<Vec<(&str, &Value)>> {
    let keyed: Vec<(&str, &Value)> = items.iter().map(|v| Some((v.get("id")?.as_str()?, v))).collect::<Option<_>>()?;
    let mut ids: Vec<&str> = keyed.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.windows(2).all(|w| w[0] != w[1]).then_some(keyed)
}

fn keyed(path: &str, before: &[(&str, &Value)], after: &[(&str, &Value)], out: &mut Vec<Change>) {
    let at = |id: &str| format!("{path}[{id}]");
    for (id, b) in before {
        match after.iter().find(|(other, _)| other == id) {
            Some((_, a)) => walk(&at(id), b, a, out),
            None => out.push(Change { path: at(id), before: Some((*b).clone()), after: None }),
        }
    }
    for (id, a) in after.iter().filter(|(id, _)| !before.iter().any(|(other, _)| other == id)) {
        out.push(Change { path: at(id), before: None, after: Some((*a).clone()) });
    }
}

fn indexed(path: &str, before: &[Value], after: &[Value], out: &mut Vec<Change>) {
    for i in 0..before.len().max(after.len()) {
        let at = format!("{path}[{i}]");
        match (before.get(i), after.get(i)) {
            (Some(b), Some(a)) => walk(&at, b, a, out),
            (Some(b), None) => out.push(Change { path: at, before: Some(b.clone()), after: None }),
            (None, Some(a)) => out.push(Change { path: at, before: None, after: Some(a.clone()) }),
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_are_matched_by_id_and_values_by_path() {
        let before = json!({
            "default": "allow",
            "rules": [
                { "id": "a", "effect": "deny", "match": { "models": ["gpt-4*"] } },
                { "id": "b", "effect": "allow" }
            ],
            "budgets": [{ "id": "m", "period": "month", "limit_usd": 100 }]
        });
        let after = json!({
            "default": "deny",
            "rules": [
                { "id": "c", "effect": "allow" },
                { "id": "b", "effect": "allow" },
                { "id": "a", "effect": "deny", "priority": 5, "match": { "models": ["gpt-4*", "o1"] } }
            ],
            "budgets": [{ "id": "m", "period": "month", "limit_usd": 150 }]
        });
        // Sorted: the order of an object's keys depends on serde_json's features.
        let mut found: Vec<(String, Option<Value>, Option<Value>)> =
            changes(&before, &after).into_iter().map(|c| (c.path, c.before, c.after)).collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            found,
            vec![
                ("budgets[m].limit_usd".to_owned(), Some(json!(100)), Some(json!(150))),
                ("default".to_owned(), Some(json!("allow")), Some(json!("deny"))),
                ("rules[a].match.models[1]".to_owned(), None, Some(json!("o1"))),
                ("rules[a].priority".to_owned(), None, Some(json!(5))),
                ("rules[c]".to_owned(), None, Some(json!({ "id": "c", "effect": "allow" }))),
            ]
        );
        assert!(changes(&after, &after).is_empty());
        let first = changes(&Value::Null, &after);
        assert_eq!((first.len(), first[0].before.is_none(), first[0].path.as_str()), (1, true, ""), "added whole");
    }
}
