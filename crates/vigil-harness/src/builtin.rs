//! Built-in plugins: Rust code shipped inside Vigil, run exactly like external plugins.
//!
//! A built-in runs as `vigil __plugin ENTRY` inside the same sandbox, reading the same
//! [`Request`] on stdin and writing a [`Response`] on stdout, so it gets no privilege an
//! external plugin would not. Built-ins come in packs ([`vigil_pack::Pack`]): the [`core`]
//! pack every input gets, and the tabular statistics pack ([`vigil_tabular::pack`], with the
//! `tabular` feature, on by default). This module is the harness's side of the contract,
//! generic over packs: [`manifests`] turns their declarations into validated manifests,
//! [`main`] is the entry point the binary dispatches to, and [`files::SandboxFiles`] gives a
//! plugin its folders.

pub mod core;
pub mod files;

use std::io::{Read, Write};

use serde_json::{Value, json};
use vigil_pack::protocol::{PROTOCOL_VERSION, Request, Response};
use vigil_pack::{Builtin, Pack};

use crate::manifest::{Plugin, RawBudgets, RawManifest, ValidateContext, validate};

/// The hidden subcommand that runs a built-in plugin.
pub const PLUGIN_SUBCOMMAND: &str = "__plugin";
/// Largest request a built-in reads from stdin.
const REQUEST_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Every pack built in, in registry order.
pub fn packs() -> Vec<Pack> {
    #[allow(unused_mut, reason = "extended with the tabular feature")]
    let mut all = vec![core::PACK];
    #[cfg(feature = "tabular")]
    all.push(vigil_tabular::pack::PACK);
    all
}

/// The built-in whose entry is `entry`.
fn find(entry: &str) -> Option<Builtin> {
    packs().into_iter().flat_map(|pack| pack.plugins.iter().copied()).find(|b| b.declaration.entry == entry)
}

/// The built-in plugins' manifests, validated.
///
/// A built-in's declaration is compiled in: one that does not validate is a programmer
/// error, stopped here (every test that builds the registry trips on it), never a plugin
/// silently missing from the registry.
pub fn manifests(vigil_version: &str) -> Vec<Plugin> {
    let owned = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    packs()
        .into_iter()
        .flat_map(|pack| pack.plugins.iter())
        .map(|builtin| {
            let d = &builtin.declaration;
            let raw = RawManifest {
                id: d.id.to_owned(),
                name: d.name.to_owned(),
                version: d.version.to_owned(),
                kind: d.kind,
                description: d.description.to_owned(),
                entrypoint: None,
                builtin: Some(d.entry.to_owned()),
                depends_on: owned(d.depends_on),
                input_formats: owned(d.input_formats),
                finding_kinds: owned(d.finding_kinds),
                config_schema: None,
                output_schema: None,
                budgets: RawBudgets {
                    time_limit_ms: Some(d.budgets.time_limit_ms),
                    memory_mb: Some(d.budgets.memory_mb),
                    row_limit: d.budgets.row_limit,
                },
                permissions: Default::default(),
                min_vigil_version: None,
                self_test: None,
            };
            let cx = ValidateContext {
                dir: None,
                inline_schemas: Some((builtin.config_schema(), response_schema())),
                vigil_version,
            };
            validate(raw, &cx).unwrap_or_else(|e| panic!("the built-in {} is declared wrongly: {e:?}", d.id))
        })
        .collect()
}

/// The output schema of the built-ins: the protocol's response shape.
fn response_schema() -> Value {
    json!({
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": { "enum": ["ok", "error"] },
            "findings": { "type": "array" },
            "metrics": { "type": "object" }
        }
    })
}

/// Entry point of `vigil __plugin ENTRY`: request on stdin, response on stdout. Returns
/// the process exit code.
pub fn main(args: &[String]) -> i32 {
    let Some(entry) = args.first() else {
        eprintln!("usage: vigil __plugin ENTRY");
        return 2;
    };
    let mut raw = String::new();
    if let Err(e) = std::io::stdin().take(REQUEST_BYTES_MAX).read_to_string(&mut raw) {
        eprintln!("cannot read the request: {e}");
        return 2;
    }
    let request: Request = match serde_json::from_str(&raw) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("invalid request: {e}");
            return 2;
        }
    };
    if request.protocol != PROTOCOL_VERSION {
        eprintln!("unsupported protocol version {}", request.protocol);
        return 2;
    }
    let result = match find(entry) {
        Some(builtin) => builtin.run(&request, &files::SandboxFiles::new(&request)),
        None => Err(format!("no built-in plugin named {entry:?}")),
    };
    let response = result.unwrap_or_else(Response::failed);
    let mut out = std::io::stdout().lock();
    match serde_json::to_writer(&mut out, &response).and_then(|()| out.flush().map_err(serde_json::Error::io)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cannot write the response: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn builtin_manifests_validate() {
        let plugins = manifests("0.1.0");
        assert_eq!(
            plugins.iter().map(|p| p.id.as_str()).take(2).collect::<Vec<_>>(),
            ["core.inspect", "core.text_profile"]
        );
        assert_eq!(plugins.len(), if cfg!(feature = "tabular") { 5 } else { 2 }, "a manifest failed to validate");
    }

    #[test]
    fn ids_and_entries_are_unique_across_packs() {
        let all: Vec<Builtin> = packs().into_iter().flat_map(|p| p.plugins.iter().copied()).collect();
        let ids: HashSet<&str> = all.iter().map(|b| b.declaration.id).collect();
        let entries: HashSet<&str> = all.iter().map(|b| b.declaration.entry).collect();
        assert_eq!((ids.len(), entries.len()), (all.len(), all.len()));
        for pack in packs() {
            for b in pack.plugins {
                assert!(
                    b.declaration.id.starts_with(&format!("{}.", pack.name)),
                    "{} is not named for its pack",
                    b.declaration.id
                );
            }
        }
        assert!(find("inspect").is_some() && find("nothing").is_none());
    }
}
