//! Tests of loading and validating the whole configuration: sources, origins in messages,
//! secrets kept out of messages, and each section's checks.

use super::*;

fn load_with(file: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let read = |path: &str| match path {
        "/secrets/admin" => Ok(format!("{}\n", "k".repeat(40))),
        "/secrets/empty" => Ok("\n".to_owned()),
        _ => Err("No such file or directory".to_owned()),
    };
    load(&Sources { file: file.map(|text| ("vigil.toml", text)), env: &env, read_file: &read })
}

fn messages(err: ConfigError) -> Vec<String> {
    err.problems.iter().map(ToString::to_string).collect()
}

#[test]
fn defaults_are_local_and_loopback() {
    let config = load_with(None, &[]).expect("defaults valid");
    assert_eq!(config.mode, Mode::Local);
    assert!(config.listen.ip().is_loopback());
    assert!(config.rate_limit.is_some());
    assert!(config.admin_key.is_none());
}

#[test]
fn env_overrides_file() {
    let config = load_with(
        Some("[rate_limit]\nper_second = 5\n"),
        &[("VIGIL_RATE_LIMIT_PER_SECOND", "7"), ("VIGIL_STORE_DURABILITY", "fast")],
    )
    .expect("valid");
    assert_eq!(config.rate_limit.map(|r| r.per_second.get()), Some(7));
    assert_eq!(config.store.durability, Durability::Fast);
}

#[test]
fn unknown_file_key_is_named() {
    let err = load_with(Some("[http]\nmax_body = 5\n"), &[]).expect_err("unknown key");
    let text = messages(err).join("\n");
    assert!(text.contains("http"), "{text}");
    assert!(text.contains("max_body"), "{text}");
}

#[test]
fn bad_enum_value_names_key_and_variable() {
    let err = load_with(None, &[("VIGIL_MODE", "prod")]).expect_err("bad mode");
    let text = messages(err).join("\n");
    assert!(text.starts_with("mode (from VIGIL_MODE)"), "{text}");
    assert!(text.contains("prod"), "{text}");
    assert!(text.contains("local"), "{text}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let err =
        load_with(Some("listen = \"0.0.0.0:80\"\n[http]\nmax_body_bytes = 1\n"), &[("VIGIL_RATE_LIMIT_BURST", "0")])
            .expect_err("three problems");
    let text = messages(err);
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(text[0].starts_with("listen (in vigil.toml): local mode binds loopback only"), "{text:?}");
    assert!(text.iter().any(|m| m.starts_with("http.max_body_bytes (in vigil.toml)")), "{text:?}");
    assert!(text.iter().any(|m| m.starts_with("rate_limit.burst (from VIGIL_RATE_LIMIT_BURST)")), "{text:?}");
}

#[test]
fn the_build_revision_variable_is_not_a_setting() {
    // `cargo run` hands the build script's VIGIL_GIT_SHA to the program it runs.
    assert!(load_with(None, &[("VIGIL_GIT_SHA", "0123abcd")]).is_ok());
}

#[test]
fn unknown_variable_is_an_error() {
    let err = load_with(None, &[("VIGIL_RATELIMIT", "5")]).expect_err("typo");
    assert!(messages(err)[0].starts_with("VIGIL_RATELIMIT: unknown setting"));
}

#[test]
fn cli_variables_are_not_settings() {
    load_with(None, &[("VIGIL_DATA", "/tmp/x"), ("VIGIL_LOG", "debug")]).expect("ignored");
}

#[test]
fn file_variable_wins_and_is_trimmed() {
    let config = load_with(None, &[("VIGIL_ADMIN_KEY", "short"), ("VIGIL_ADMIN_KEY_FILE", "/secrets/admin")])
        .expect("file wins over the too-short plain value");
    assert_eq!(config.admin_key.map(|k| k.expose().to_owned()), Some("k".repeat(40)));
}

#[test]
fn missing_or_empty_secret_file_stops_start() {
    let err = load_with(None, &[("VIGIL_ADMIN_KEY_FILE", "/secrets/missing")]).expect_err("missing");
    let text = messages(err).join("\n");
    assert!(text.contains("VIGIL_ADMIN_KEY_FILE: cannot read /secrets/missing"), "{text}");

    let err = load_with(None, &[("VIGIL_ADMIN_KEY_FILE", "/secrets/empty")]).expect_err("empty");
    assert!(messages(err)[0].contains("/secrets/empty is empty"));
}

#[test]
fn secrets_never_echoed() {
    let err = load_with(None, &[("VIGIL_ADMIN_KEY", "tooshort-secret")]).expect_err("short");
    let text = messages(err).join("\n");
    assert!(!text.contains("tooshort-secret"), "{text}");
    let config = load_with(None, &[("VIGIL_ADMIN_KEY", &"s".repeat(40))]).expect("valid");
    assert!(!format!("{config:?}").contains(&"s".repeat(40)));
}

#[test]
fn toml_errors_do_not_quote_the_source() {
    let secret = "0123456789abcdef0123456789abcdef-not-quoted";
    let err = load_with(Some(&format!("[auth]\nadmin_key = {secret}\n")), &[]).expect_err("invalid TOML");
    let text = messages(err).join("\n");
    assert!(!text.contains(secret), "{text}");
    assert!(text.contains("line 2"), "the position is kept: {text}");

    let err = load_with(Some("[auth]\nadmin_key = 918273645546372819\n"), &[]).expect_err("wrong type");
    let text = messages(err).join("\n");
    assert!(text.starts_with("auth.admin_key (in vigil.toml)") && !text.contains("918273645546372819"), "{text}");
}

#[test]
fn gateway_providers_are_validated_and_routed() {
    let file = r#"
[[gateway.providers]]
name = "anthropic"
kind = "anthropic"
base_url = "https://api.anthropic.com/v1/"
api_key_file = "/secrets/admin"
models = ["claude-*"]

[[gateway.providers]]
name = "openai"
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
"#;
    let config = load_with(Some(file), &[("OPENAI_API_KEY", "sk-test")]).expect("valid");
    let gw = &config.gateway;
    let by = |model: &str, kind| gw.provider_for(model, kind).map(|p| p.name.as_str());
    assert_eq!(by("claude-sonnet-4-5", ProviderKind::Anthropic), Some("anthropic"));
    assert_eq!(by("gpt-4o", ProviderKind::Openai), Some("openai"));
    assert_eq!(by("gpt-4o", ProviderKind::Anthropic), None, "the Anthropic provider serves claude-* only");
    assert_eq!(gw.providers[0].base_url, "https://api.anthropic.com/v1", "trailing slash trimmed");
    assert_eq!(gw.providers[1].api_key.as_ref().map(Secret::expose), Some("sk-test"));

    let err = load_with(Some(file), &[]).expect_err("key variable missing");
    let text = messages(err).join("\n");
    assert!(text.contains("gateway.providers[1].api_key_env") && text.contains("OPENAI_API_KEY"), "{text}");

    let bad = "[[gateway.providers]]\nname = \"x\"\nkind = \"openai\"\nbase_url = \"ftp://x\"\n";
    let err = load_with(Some(bad), &[]).expect_err("bad url");
    assert!(messages(err)[0].starts_with("gateway.providers[0].base_url (in vigil.toml)"));
    for bad in ["https://host:70000/v1", "https://ap|i.example.com/v1", "http://[::1/v1"] {
        let text = format!("[[gateway.providers]]\nname = \"x\"\nkind = \"openai\"\nbase_url = \"{bad}\"\n");
        let err = load_with(Some(&text), &[]).expect_err(bad);
        assert!(messages(err)[0].contains("is not a valid URL"), "{bad}");
    }
}

#[test]
fn prices_are_validated_and_converted_exactly() {
    let file = "[[gateway.prices]]\nmodel = \"llama-*\"\ninput_per_mtok = 0.0375\noutput_per_mtok = 1.5\nsince = \"2026-06-01\"\n";
    let config = load_with(Some(file), &[]).expect("valid");
    let price = &config.gateway.prices[0];
    assert_eq!((price.input_nanos_per_mtok, price.cached_input_nanos_per_mtok), (37_500_000, 37_500_000));
    assert_eq!(price.output_nanos_per_mtok, 1_500_000_000);
    assert_eq!(price.since.map(|t| t.to_rfc3339()), Some("2026-06-01T00:00:00Z".to_owned()));
    // Cache writes default to input; the one-hour lifetime to the (given) write price.
    assert_eq!((price.cache_write_nanos_per_mtok, price.cache_write_1h_nanos_per_mtok), (37_500_000, 37_500_000));
    let file =
        "[[gateway.prices]]\nmodel = \"c*\"\ninput_per_mtok = 1\ncache_write_per_mtok = 1.25\noutput_per_mtok = 5\n";
    let price = &load_with(Some(file), &[]).expect("valid").gateway.prices[0];
    assert_eq!((price.cache_write_nanos_per_mtok, price.cache_write_1h_nanos_per_mtok), (1_250_000_000, 1_250_000_000));
    let bad = "[[gateway.prices]]\nmodel = \"x\"\ninput_per_mtok = -1.0\noutput_per_mtok = 1.0\nsince = \"soon\"\n";
    let text = messages(load_with(Some(bad), &[]).expect_err("bad")).join("\n");
    assert!(text.contains("gateway.prices[0].input_per_mtok") && text.contains("gateway.prices[0].since"), "{text}");
}

#[test]
fn bad_integer_from_env() {
    let err = load_with(None, &[("VIGIL_HTTP_MAX_BODY_BYTES", "lots")]).expect_err("nan");
    assert_eq!(
        messages(err)[0],
        "http.max_body_bytes (from VIGIL_HTTP_MAX_BODY_BYTES): expected a whole number, got \"lots\""
    );
}

#[test]
fn every_setting_is_a_real_key() {
    let defaults = toml::Value::try_from(RawConfig::default()).expect("serializes");
    for setting in settings() {
        if ["listen", "auth.admin_key", "harness.sandbox_strict"].contains(&setting.key) {
            continue; // optional, absent from the serialized defaults
        }
        let mut value = &defaults;
        for part in setting.key.split('.') {
            value = value.get(part).unwrap_or_else(|| panic!("{} is not a config key", setting.key));
        }
    }
}
