//! The contract between the harness and a built-in plugin pack.
//!
//! A pack (the tabular statistics pack, next the speech-recognition pack) is a crate that
//! declares its plugins as [`Builtin`]s gathered in a [`Pack`]. Each plugin is a type
//! implementing [`Plugin`]: its [`Declaration`] (what the manifest of an external plugin
//! would say), its settings as one Rust type (from which both the config schema and the
//! parser come, so they cannot disagree, and whose `Default` is the one place its defaults
//! are written), and the code that turns a [`protocol::Request`] into a
//! [`protocol::Response`].
//!
//! A plugin's code reaches files only through [`Files`]: the harness hands it the sandbox's
//! folders, tests hand it memory ([`testing`]). So a pack stays free of IO and of the
//! harness: it depends on this crate alone, and the harness is generic over packs. The
//! contract is written out for pack authors in `docs/plugin-packs.md`.

pub mod files;
pub mod protocol;
#[cfg(feature = "testing")]
pub mod testing;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use files::{Files, Input, Shared};
use protocol::{Budgets, Request, Response};

/// What a plugin does, which decides where it sits in a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    Ingest,
    Profile,
    Analysis,
    Report,
    Eval,
    Llm,
}

/// What a built-in plugin says about itself: what an external plugin's `plugin.toml`
/// says, less what a built-in cannot choose (its entry point is `vigil __plugin ENTRY`,
/// its schemas come from its types, its permissions are none).
#[derive(Clone, Copy, Debug)]
pub struct Declaration {
    /// The plugin id, `PACK.NAME` (`tabular.profile`).
    pub id: &'static str,
    /// A short human name.
    pub name: &'static str,
    /// Semantic version: bump it when results change for the same input and settings.
    pub version: &'static str,
    pub kind: PluginKind,
    /// The name `vigil __plugin` runs it by; unique among every pack's plugins.
    pub entry: &'static str,
    /// Plugin ids whose results this one reads (as `Request::dependencies`).
    pub depends_on: &'static [&'static str],
    /// Input formats it applies to (`csv`, `xlsx`, ...); empty means every input.
    pub input_formats: &'static [&'static str],
    /// The finding kinds it may report: what a known issue can expect of it.
    pub finding_kinds: &'static [&'static str],
    pub description: &'static str,
    pub budgets: Budgets,
}

/// A built-in plugin.
pub trait Plugin {
    /// Its settings (the run's `settings[plugin id]`). The config schema is generated from
    /// this type and the harness checks settings against it before the plugin starts;
    /// the plugin reads them with `serde`. Absent fields take the `Default` value, and
    /// unknown fields are refused (`#[serde(default, deny_unknown_fields)]`).
    type Settings: DeserializeOwned + schemars::JsonSchema;

    const DECLARATION: Declaration;

    /// Runs the plugin. An `Err` becomes an `error` response with that message.
    fn run(request: &Request, settings: Self::Settings, files: &dyn Files) -> Result<Response, String>;
}

/// A plugin as the harness holds it: its declaration, and functions for its config schema
/// and its run, erased of its types.
#[derive(Clone, Copy)]
pub struct Builtin {
    pub declaration: Declaration,
    schema: fn() -> Value,
    run: fn(&Request, &dyn Files) -> Result<Response, String>,
}

impl Builtin {
    /// The built-in for plugin `P`.
    pub const fn of<P: Plugin>() -> Builtin {
        Builtin { declaration: P::DECLARATION, schema: settings_schema::<P::Settings>, run: run_with_settings::<P> }
    }

    /// The JSON Schema (2020-12) of its settings.
    pub fn config_schema(&self) -> Value {
        (self.schema)()
    }

    /// Reads the request's settings and runs the plugin.
    pub fn run(&self, request: &Request, files: &dyn Files) -> Result<Response, String> {
        (self.run)(request, files)
    }
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builtin").field("declaration", &self.declaration).finish_non_exhaustive()
    }
}

/// A pack: a named set of built-in plugins.
#[derive(Clone, Copy, Debug)]
pub struct Pack {
    pub name: &'static str,
    pub plugins: &'static [Builtin],
}

/// The schema of settings type `S`, with every subschema inline (a config schema is read
/// by people choosing settings) and without the generated title (the type's Rust name).
pub fn settings_schema<S: schemars::JsonSchema>() -> Value {
    let generator =
        schemars::generate::SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true).into_generator();
    let mut schema = generator.into_root_schema_for::<S>();
    schema.remove("title");
    schema.to_value()
}

fn run_with_settings<P: Plugin>(request: &Request, files: &dyn Files) -> Result<Response, String> {
    let mut config = request.config.clone();
    whole_numbers_as_integers(&mut config);
    let settings = serde_json::from_value(config)
        .map_err(|e| format!("the settings of {} are invalid: {e}", P::DECLARATION.id))?;
    P::run(request, settings, files)
}

pub use vigil_core::number::whole_numbers_as_integers;

/// Settings of a plugin that takes none: an empty object, nothing else.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Settings with a default, a range and an optional choice.
    #[derive(Debug, serde::Deserialize, schemars::JsonSchema, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Example {
        /// How long a line may be.
        #[schemars(range(min = 1))]
        long_line_bytes: u64,
        mode: Option<Mode>,
    }

    impl Default for Example {
        fn default() -> Self {
            Example { long_line_bytes: 10_000, mode: None }
        }
    }

    #[derive(Debug, serde::Deserialize, schemars::JsonSchema, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Fast,
        Exact,
    }

    #[test]
    fn the_schema_states_what_the_parser_reads_and_its_default() {
        let schema = settings_schema::<Example>();
        assert_eq!(schema["additionalProperties"], json!(false), "{schema}");
        assert_eq!(schema["properties"]["long_line_bytes"]["default"], json!(10_000), "{schema}");
        assert_eq!(schema["properties"]["long_line_bytes"]["minimum"], json!(1), "{schema}");
        assert_eq!(schema["properties"]["long_line_bytes"]["description"], json!("How long a line may be."));
        assert!(schema.get("title").is_none() && !schema.to_string().contains("$ref"), "{schema}");
        assert!(schema["properties"]["mode"].to_string().contains("exact"), "{schema}");
        let read: Example = serde_json::from_value(json!({"mode": "exact"})).expect("settings");
        assert_eq!(read, Example { long_line_bytes: 10_000, mode: Some(Mode::Exact) });
        assert!(serde_json::from_value::<Example>(json!({"surprise": 1})).is_err());
        assert!(settings_schema::<NoSettings>()["additionalProperties"] == json!(false));
    }

    #[test]
    fn whole_floats_read_as_integers_and_fractions_stay() {
        let mut settings = json!({
            "long_line_bytes": 5000.0,
            "nested": [{ "n": -3.0 }, 2.5, 1e300, "7.0"],
            "exact": 12,
        });
        whole_numbers_as_integers(&mut settings);
        assert_eq!(
            settings,
            json!({ "long_line_bytes": 5000, "nested": [{ "n": -3 }, 2.5, 1e300, "7.0"], "exact": 12 })
        );
        let read: Example = serde_json::from_value(json!({ "long_line_bytes": 5000 })).expect("an integer");
        assert_eq!(read.long_line_bytes, 5000);
    }
}
