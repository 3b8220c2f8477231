//! Reading the sources into one TOML table: the `VIGIL_*` environment overlay on top of the
//! file, `*_FILE` secrets read through [`Sources::read_file`], each variable's text parsed
//! by its [`Setting`]'s [`ValueKind`], and the [`Origins`] of every key recorded for messages.

use super::{
    CLI_VARIABLES, FILE_SUFFIX, Origin, Origins, Problem, SECRET_FILE_BYTES_MAX, Setting, Sources, ValueKind, settings,
};

pub(super) fn record_origins(table: &toml::Table, prefix: &str, origin: &Origin, origins: &mut Origins) {
    for (name, value) in table {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        if let toml::Value::Table(inner) = value {
            record_origins(inner, &key, origin, origins);
        }
        origins.0.insert(key, origin.clone());
    }
}

pub(super) fn overlay_env(
    table: &mut toml::Table,
    sources: &Sources<'_>,
    origins: &mut Origins,
    problems: &mut Vec<Problem>,
) {
    for (name, value) in sources.env.range("VIGIL_".to_owned()..) {
        if !name.starts_with("VIGIL_") {
            break;
        }
        if CLI_VARIABLES.contains(&name.as_str()) {
            continue;
        }
        let (plain, from_file) = match name.strip_suffix(FILE_SUFFIX) {
            Some(plain) if settings().any(|s| s.env == plain) => (plain, true),
            _ => (name.as_str(), false),
        };
        let Some(setting) = settings().find(|s| s.env == plain) else {
            problems.push(Problem {
                key: name.clone(),
                origin: Origin::Env(name.clone()),
                message: format!(
                    "unknown setting; known variables are {} (each also as ..._FILE)",
                    settings().map(|s| s.env).collect::<Vec<_>>().join(", ")
                ),
            });
            continue;
        };
        // The `_FILE` form wins over the plain variable when both are set.
        if !from_file && sources.env.contains_key(&format!("{name}{FILE_SUFFIX}")) {
            continue;
        }
        let text = if from_file {
            match read_secret_file(sources, value) {
                Ok(text) => text,
                Err(message) => {
                    problems.push(Problem { key: name.clone(), origin: Origin::Env(name.clone()), message });
                    continue;
                }
            }
        } else {
            value.clone()
        };
        let origin = Origin::Env(name.clone());
        match parse_env_value(setting, &text) {
            Ok(value) => {
                insert_path(table, setting.key, value);
                origins.0.insert(setting.key.to_owned(), origin);
            }
            Err(message) => problems.push(Problem { key: setting.key.to_owned(), origin, message }),
        }
    }
}

/// Reads a secret file named by a `*_FILE` variable or by the file itself (a provider's
/// `api_key_file`), without the trailing newline.
pub(super) fn read_secret_file(sources: &Sources<'_>, path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err("names no file (the variable is empty)".to_owned());
    }
    let text = (sources.read_file)(path).map_err(|why| format!("cannot read {path}: {why}"))?;
    if text.len() > SECRET_FILE_BYTES_MAX {
        return Err(format!("{path} is larger than {SECRET_FILE_BYTES_MAX} bytes"));
    }
    // Files written by editors and `echo` end in a newline that is not part of the secret.
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.trim().is_empty() {
        return Err(format!("{path} is empty"));
    }
    Ok(trimmed.to_owned())
}

fn parse_env_value(setting: &Setting, text: &str) -> Result<toml::Value, String> {
    let shown = |t: &str| if setting.secret { "<redacted>".to_owned() } else { format!("{t:?}") };
    match setting.kind {
        ValueKind::Text => Ok(toml::Value::String(text.to_owned())),
        ValueKind::Integer => text
            .trim()
            .replace('_', "")
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("expected a whole number, got {}", shown(text))),
        ValueKind::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("expected true or false, got {}", shown(text))),
        },
        ValueKind::List => Ok(toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| toml::Value::String(item.to_owned()))
                .collect(),
        )),
    }
}

fn insert_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut current = table;
    for part in parts {
        let entry = current.entry(part.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(inner) = entry else { unreachable!("just made a table") };
        current = inner;
    }
    current.insert(last.to_owned(), value);
}
