//! Runs through the real binary: every execution status, violations recorded per plugin,
//! determinism, idempotency, caching, lineage, live events, cancel, and crash recovery
//! (kill -9 mid-run, restart, `crashed`, retry completes it).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Env, Server, reply};

use vigil_tabular::testing as workbook;

const ORDERS: &[u8] = b"id,name,amount\n1,Ada,10\n2,Lee,20\n\n2,Lee,20\n3,Kim\n";

/// An environment whose data and plugin folders an unprivileged sandbox user can reach.
fn env_with_plugins(plugins: &[(&str, &str, &str)]) -> (Env, PathBuf) {
    let mut env = Env::new();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dir = env.dir.path().join("plugins");
    for (name, manifest, script) in plugins {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(folder.join("plugin.toml"), manifest).expect("manifest");
        std::fs::write(folder.join("plugin.py"), script).expect("script");
    }
    env.set("VIGIL_HARNESS_PLUGINS_DIR", dir.display().to_string());
    (env, dir)
}

fn python_plugin(id: &str, extra: &str) -> String {
    format!(
        "id = {id:?}\nname = {id:?}\nversion = \"1.0.0\"\ntype = \"analysis\"\nentrypoint = [\"python3\", \"plugin.py\"]\n{extra}\n"
    )
}

fn upload(server: &Server, name: &str, body: &[u8]) -> String {
    let resp = server
        .client
        .post(format!("{}/api/v1/uploads?name={name}", server.url))
        .header("content-type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .expect("upload");
    let reply = reply(resp);
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["data"]["upload"]["id"].as_str().expect("id").to_owned()
}

fn submit(server: &Server, request: Value) -> crate::support::Reply {
    server.post("/api/v1/runs", None, &request.to_string())
}

/// Polls a run until it ends; returns its detail (run and executions).
fn wait(server: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let detail = server.get(&format!("/api/v1/runs/{id}"), None).body["data"].clone();
        let status = detail["run"]["status"].as_str().unwrap_or("").to_owned();
        if !["queued", "running"].contains(&status.as_str()) {
            return detail;
        }
        assert!(Instant::now() < deadline, "run {id} did not finish: {detail}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn execution<'a>(detail: &'a Value, plugin: &str) -> &'a Value {
    detail["executions"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["plugin_id"] == plugin))
        .unwrap_or_else(|| panic!("no execution of {plugin} in {detail}"))
}

fn run_dir(env: &Env, id: &str) -> PathBuf {
    env.data().join("runs").join(id)
}

/// report.json with the run's id and time replaced, for byte comparisons.
fn normalized_report(path: &Path) -> String {
    let mut report: Value = serde_json::from_slice(&std::fs::read(path).expect("report.json")).expect("json");
    report["run"]["id"] = json!("RUN");
    report["run"]["created_at"] = json!("TIME");
    serde_json::to_string_pretty(&report).expect("json")
}

#[test]
fn a_csv_run_completes_with_an_evidenced_report_and_lineage() {
    let (env, _) = env_with_plugins(&[]);
    let server = env.start();
    let upload_id = upload(&server, "orders.csv", ORDERS);

    let plan = server.post("/api/v1/runs/plan", None, &json!({ "upload_id": upload_id }).to_string());
    assert_eq!(plan.status, 200, "{:?}", plan.body);
    let steps = plan.body["data"]["plan"]["steps"].as_array().expect("steps").clone();
    assert_eq!(
        steps.iter().map(|s| s["plugin_id"].as_str().unwrap_or("")).collect::<Vec<_>>(),
        ["core.inspect", "core.text_profile", "tabular.ingest", "tabular.analyses", "tabular.profile"]
    );
    assert_eq!(steps[1]["reason"], "recommended for csv input");
    assert_eq!(steps[1]["layer"], 1);
    assert_eq!(steps[4]["layer"], 2);

    let created = submit(&server, json!({ "upload_id": upload_id }));
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    assert_eq!(created.body["data"]["run"]["fingerprint"], plan.body["data"]["fingerprint"]);
    assert_eq!(created.body["data"]["run"]["status"], "queued");
    let detail = wait(&server, &id);
    assert_eq!(detail["run"]["status"], "completed", "{detail}");
    for plugin in ["core.inspect", "core.text_profile", "tabular.ingest", "tabular.analyses", "tabular.profile"] {
        let e = execution(&detail, plugin);
        assert_eq!(e["status"], "ok");
        assert!(e["duration_us"].as_u64().is_some_and(|d| d > 0), "{e}");
        assert!(e["max_rss_kib"].as_u64().is_some_and(|m| m > 0), "{e}");
        assert_eq!(e["enforced"]["filesystem"]["enforced"], true, "{e}");
        assert_eq!(e["enforced"]["network"]["enforced"], true, "{e}");
    }

    let dir = run_dir(&env, &id);
    for name in ["run_manifest.json", "report.json", "report.md", "evaluation.json", "input/orders.csv"] {
        assert!(dir.join(name).is_file(), "{name} missing");
    }
    assert_eq!(std::fs::read_dir(env.data().join("runs/.partial")).expect("partial").count(), 0, "finalized");
    let report = server.get(&format!("/api/v1/runs/{id}/report"), None).body["data"].clone();
    let from = |plugin: &str| -> Vec<Value> {
        report["findings"].as_array().expect("findings").iter().filter(|f| f["plugin_id"] == plugin).cloned().collect()
    };
    let kinds =
        |findings: &[Value]| findings.iter().map(|f| f["kind"].as_str().unwrap_or("").to_owned()).collect::<Vec<_>>();
    assert_eq!(kinds(&from("core.text_profile")), ["ragged_rows", "duplicate_rows", "blank_lines"]);
    let ragged = &from("core.text_profile")[0];
    assert_eq!(ragged["measurement_type"], "measured");
    assert_eq!(ragged["evidence"]["rows"], json!([6]));
    assert_eq!(ragged["finding_id"].as_str().map(str::len), Some(16));
    // The typed reading left the ragged row out and says so; its dataset version is the run's.
    assert_eq!(kinds(&from("tabular.ingest")), ["ragged_rows"]);
    assert_eq!(report["input"]["dataset"]["plugin_id"], "tabular.ingest");
    assert_eq!(report["input"]["dataset"]["rows"], 3);
    assert!(report["input"]["dataset"]["data_hash"].as_str().is_some_and(|h| h.starts_with("sha256:")));
    let markdown = std::fs::read_to_string(dir.join("report.md")).expect("md");
    assert!(markdown.contains("rows 6"), "{markdown}");

    let lineage = server.get(&format!("/api/v1/runs/{id}/lineage"), None).body["data"].clone();
    let edges: Vec<(String, String)> = lineage
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| (e["from_kind"].as_str().unwrap_or("").to_owned(), e["to_kind"].as_str().unwrap_or("").to_owned()))
        .collect();
    for expected in
        [("upload", "dataset_version"), ("dataset_version", "run"), ("run", "plugin_result"), ("run", "artifact")]
    {
        assert!(edges.contains(&(expected.0.to_owned(), expected.1.to_owned())), "{expected:?} missing from {edges:?}");
    }
}

/// The tabular pack's orders fixture (60 orders, e-mail addresses, a vendor column).
fn orders_fixture() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../vigil-tabular/tests/fixtures/orders.csv"))
        .expect("fixture")
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(files_under(&path)) } else { files.push(path) }
    }
    files
}

#[test]
fn a_business_table_gets_a_typed_profile_analyses_and_plots_without_showing_personal_data() {
    let (env, _) = env_with_plugins(&[]);
    let server = env.start();
    let orders = orders_fixture();
    let upload_id = upload(&server, "orders.csv", &orders);
    let settings = json!({ "tabular.analyses": { "references": [{ "column": "vendor_id", "parent": "zip" }] } });
    let created = submit(&server, json!({ "upload_id": upload_id, "settings": settings }));
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    let detail = wait(&server, &id);
    assert_eq!(detail["run"]["status"], "completed", "{detail}");

    let report = server.get(&format!("/api/v1/runs/{id}/report"), None).body["data"].clone();
    assert_eq!(report["input"]["dataset"]["plugin_id"], "tabular.ingest");
    assert_eq!(report["metrics"]["tabular.ingest"]["schema"]["amount"]["role"], "amount", "{report}");
    assert_eq!(report["metrics"]["tabular.profile"]["exact"], true);
    let found = |kind: &str| {
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["kind"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    assert_eq!(found("personal_data")["evidence"]["columns"], json!(["customer_email"]));
    assert_eq!(found("unmatched_references")["evidence"]["columns"], json!(["vendor_id", "zip"]));
    assert_eq!(found("unmatched_references")["severity"], "high");

    // Plots are in report.md and on disk; every artifact the report lists exists.
    let dir = run_dir(&env, &id);
    let markdown = std::fs::read_to_string(dir.join("report.md")).expect("md");
    assert!(markdown.contains("## Plots"), "{markdown}");
    let plots: Vec<&str> = markdown
        .lines()
        .filter_map(|l| l.strip_prefix("!["))
        .filter_map(|l| l.split("](").nth(1))
        .map(|l| l.trim_end_matches(')'))
        .collect();
    for expected in ["missingness.svg", "correlation-pearson.svg", "-amount.svg"] {
        assert!(plots.iter().any(|p| p.ends_with(expected)), "{expected} not in {plots:?}");
    }
    assert!(plots.iter().any(|p| p.contains("tabular.analyses/artifacts/benford-")), "{plots:?}");
    for plot in &plots {
        let svg = std::fs::read_to_string(dir.join(plot)).unwrap_or_else(|e| panic!("{plot}: {e}"));
        assert!(svg.starts_with("<svg "), "{plot}");
    }
    for plugin in report["plugins"].as_array().expect("plugins") {
        for artifact in plugin["artifacts"].as_array().expect("artifacts") {
            assert!(dir.join(artifact["path"].as_str().expect("path")).is_file(), "{artifact}");
        }
    }

    // The typed table the ingest shared with the profile and the analyses is gone.
    assert!(!dir.join("plugins/tabular.ingest/share").exists(), "a run keeps no shared intermediate files");

    // No e-mail address of the input appears anywhere Vigil wrote, the copy of the input aside.
    let emails: Vec<String> = String::from_utf8_lossy(&orders)
        .split([',', '\n'])
        .filter(|cell| cell.contains('@'))
        .map(str::to_owned)
        .collect();
    assert!(emails.len() > 10);
    for file in files_under(&dir).into_iter().filter(|f| !f.starts_with(dir.join("input"))) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).expect("read")).into_owned();
        if let Some(email) = emails.iter().find(|e| text.contains(e.as_str())) {
            panic!("{} shows {email}", file.display());
        }
    }

    // Other analyses settings: the ingest's result is reused without its shared table, so
    // the analyses read the input again, and describe the same dataset version.
    let settings = json!({ "tabular.analyses": { "references": [{ "column": "zip", "parent": "vendor_id" }] } });
    let again = submit(&server, json!({ "upload_id": upload_id, "settings": settings }));
    let again_id = again.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    let detail = wait(&server, &again_id);
    assert_eq!(detail["run"]["status"], "completed", "{detail}");
    assert_eq!(execution(&detail, "tabular.ingest")["status"], "cached");
    assert_eq!(execution(&detail, "tabular.analyses")["status"], "ok");
    let again = server.get(&format!("/api/v1/runs/{again_id}/report"), None).body["data"].clone();
    assert_eq!(again["input"]["dataset"], report["input"]["dataset"]);
}

#[test]
fn an_xlsx_workbook_is_read_sheet_by_sheet_and_each_sheet_or_the_chosen_one_profiled() {
    use workbook::{number, row, text};
    let (env, _) = env_with_plugins(&[]);
    let server = env.start();
    let notes = [row(1, &[text("A1", "note")]), row(2, &[text("A2", "see ledger")])].concat();
    let ledger = [
        row(1, &[text("A1", "entry"), text("B1", "amount")]),
        row(2, &[number("A2", "1"), number("B2", "120.5")]),
        row(3, &[number("A3", "2"), number("B3", "80")]),
        row(4, &[number("A4", "2"), number("B4", "80")]),
    ]
    .concat();
    let book = workbook::workbook(&[("Notes", notes), ("Ledger", ledger)]);
    let upload_id = upload(&server, "book.xlsx", &book);
    let settings = json!({ "tabular.ingest": { "sheet": "Ledger", "sheets": ["Notes", "Ledger"] } });
    let created = submit(&server, json!({ "upload_id": upload_id, "settings": settings }));
    assert_eq!(created.status, 201, "{:?}", created.body);
    let detail = wait(&server, created.body["data"]["run"]["id"].as_str().expect("id"));
    assert_eq!(detail["run"]["status"], "completed", "{detail}");
    let id = detail["run"]["id"].as_str().expect("id");
    let report = server.get(&format!("/api/v1/runs/{id}/report"), None).body["data"].clone();
    assert_eq!(report["input"]["format"], "xlsx");
    assert_eq!(report["input"]["dataset"]["plugin_id"], "tabular.ingest");
    assert_eq!(
        (report["input"]["dataset"]["rows"].clone(), report["input"]["dataset"]["columns"].clone()),
        (json!(3), json!(2))
    );
    let sheets = &report["metrics"]["tabular.ingest"]["sheets"];
    assert_eq!(
        sheets.as_array().map(|s| s.iter().map(|s| s["name"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("Notes"), json!("Ledger")])
    );
    let duplicate = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "duplicate_rows" && f["plugin_id"] == "tabular.profile")
        .cloned();
    assert_eq!(duplicate.map(|f| f["evidence"]["rows"].clone()), Some(json!([3])), "{report}");

    // Without a chosen sheet, every sheet with rows is a table of the dataset version,
    // profiled and analysed on its own; the report says which sheet each finding is about.
    let created = submit(&server, json!({ "upload_id": upload_id }));
    let detail = wait(&server, created.body["data"]["run"]["id"].as_str().expect("id"));
    assert_eq!(detail["run"]["status"], "completed", "{detail}");
    let id = detail["run"]["id"].as_str().expect("id");
    let whole = server.get(&format!("/api/v1/runs/{id}/report"), None).body["data"].clone();
    let dataset = &whole["input"]["dataset"];
    assert_eq!((dataset["rows"].clone(), dataset["columns"].clone()), (json!(4), json!(3)), "{dataset}");
    assert_ne!(dataset["data_hash"], report["input"]["dataset"]["data_hash"]);
    let profiled = &whole["metrics"]["tabular.profile"]["sheets"];
    assert_eq!(profiled["Notes"]["rows"], 1, "{profiled}");
    assert_eq!(profiled["Ledger"]["columns"]["amount"]["max"], 120.5, "{profiled}");
    let duplicate = whole["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "duplicate_rows")
        .cloned()
        .unwrap_or_default();
    assert_eq!(duplicate["evidence"]["values"]["sheet"], "Ledger", "{duplicate}");
    assert!(duplicate["title"].as_str().is_some_and(|t| t.starts_with("Sheet \"Ledger\": ")), "{duplicate}");

    // A known issue narrowed to a sheet matches only findings about that sheet.
    let issues = json!([
        { "id": "ledger-dups", "kind": "duplicate_rows", "plugin_id": "tabular.profile", "sheet": "Ledger" },
        { "id": "notes-dups", "kind": "duplicate_rows", "sheet": "Notes" },
    ]);
    let preview =
        server.post("/api/v1/known-issues/preview", None, &json!({ "issues": issues, "run_id": id }).to_string());
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    assert_eq!(preview.body["data"][0]["would_match"], json!([duplicate["finding_id"]]), "{:?}", preview.body);
    assert_eq!(
        preview.body["data"][0]["check"],
        "a finding of kind `duplicate_rows` from tabular.profile about sheet `Ledger`"
    );
    assert_eq!(preview.body["data"][1]["would_match"], json!([]), "{:?}", preview.body);
    let markdown = std::fs::read_to_string(run_dir(&env, id).join("report.md")).expect("md");
    assert!(markdown.contains("sheet-02-ledger-missingness.svg"), "{markdown}");
}

#[test]
fn known_issues_are_previewed_versioned_and_evaluated_in_the_report() {
    let (env, _) = env_with_plugins(&[]);
    let server = env.start();
    let orders = orders_fixture();
    let upload_id = upload(&server, "orders.csv", &orders);
    let issues = json!({ "issues": [
        { "id": "customer-emails", "description": "orders carry the buyer's e-mail", "kind": "personal_data", "column": "customer_email" },
        { "id": "no-dup-orders", "kind": "duplicate_keys", "column": "order_id" },
        { "id": "typo", "kind": "duplicate_key" },
        { "id": "batch", "description": "month-end batch postings" },
    ]});

    // The preview says, before anything is saved, which checks run and what they match.
    let preview = server.post(
        "/api/v1/known-issues/preview",
        None,
        &json!({ "issues": issues["issues"], "upload_id": upload_id }).to_string(),
    );
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    let statuses: Vec<&str> =
        preview.body["data"].as_array().expect("preview").iter().map(|p| p["status"].as_str().unwrap_or("")).collect();
    assert_eq!(statuses, ["will_run", "will_run", "no_plugin_reports_kind", "note"]);
    assert_eq!(preview.body["data"][0]["plugins"], json!(["tabular.analyses"]));
    assert_eq!(preview.body["data"][0]["check"], "a finding of kind `personal_data` naming column `customer_email`");

    let bad = server.put(
        "/api/v1/known-issues/erp.orders",
        None,
        &json!({ "issues": [{ "id": "x", "kind": "Bad Kind" }] }).to_string(),
    );
    assert_eq!(bad.status, 422, "{:?}", bad.body);
    assert!(bad.body["error"]["message"].as_str().is_some_and(|m| m.contains("Bad Kind")), "{:?}", bad.body);
    let unknown = submit(&server, json!({ "upload_id": upload_id, "dataset_kind": "erp.orders" }));
    assert_eq!(unknown.status, 422, "no issues declared yet: {:?}", unknown.body);

    let saved = server.put("/api/v1/known-issues/erp.orders", None, &issues.to_string());
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    assert_eq!(
        (saved.body["data"]["set"]["version"].clone(), saved.body["data"]["changed"].clone()),
        (json!(1), json!(true))
    );
    // The same issues again add no version, and the request is on the record all the same.
    let again = server.put("/api/v1/known-issues/erp.orders", None, &issues.to_string());
    assert_eq!(
        (again.body["data"]["set"]["version"].clone(), again.body["data"]["changed"].clone()),
        (json!(1), json!(false)),
        "{:?}",
        again.body
    );
    let audit = server.get("/api/v1/audit?action=known_issues.put", None);
    let saves = audit.body["data"]["items"].as_array().into_iter().flatten().filter(|e| e["outcome"] == "success");
    assert_eq!(saves.count(), 2, "{:?}", audit.body);

    let created = submit(&server, json!({ "upload_id": upload_id, "dataset_kind": "erp.orders" }));
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    let detail = wait(&server, &id);
    assert_eq!(detail["run"]["status"], "completed", "{detail}");

    let dir = run_dir(&env, &id);
    let evaluation: Value =
        serde_json::from_slice(&std::fs::read(dir.join("evaluation.json")).expect("evaluation")).expect("json");
    assert_eq!(evaluation["status"], "missed_some");
    assert_eq!(evaluation["version"], 1);
    assert_eq!(
        evaluation["found"].as_array().map(|f| f.iter().map(|f| f["id"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("customer-emails")])
    );
    let missed: Vec<(String, String)> = evaluation["missed"]
        .as_array()
        .expect("missed")
        .iter()
        .map(|m| (m["id"].as_str().unwrap_or("").to_owned(), m["reason"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(
        missed,
        [
            ("no-dup-orders".to_owned(), "no finding matched".to_owned()),
            ("typo".to_owned(), "no plugin declares `duplicate_key` findings".to_owned()),
        ]
    );
    let report: Value = serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report")).expect("json");
    assert_eq!(report["evaluation"], evaluation, "the report holds the same evaluation");
    let found_id = &evaluation["found"][0]["finding_ids"][0];
    assert!(report["findings"].as_array().expect("findings").iter().any(|f| &f["finding_id"] == found_id));
    let markdown = std::fs::read_to_string(dir.join("report.md")).expect("md");
    assert!(markdown.contains("## Known issues") && markdown.contains("**1 of 3 found**"), "{markdown}");
    assert!(
        markdown.contains("**missed**: no finding matched") && markdown.contains("month-end batch postings"),
        "{markdown}"
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("run_manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["known_issues"]["version"], 1);

    // Matching the finished run: the preview names the finding each issue would match.
    let against = server.post(
        "/api/v1/known-issues/preview",
        None,
        &json!({ "dataset_kind": "erp.orders", "run_id": id }).to_string(),
    );
    assert_eq!(against.body["data"][0]["would_match"], json!([found_id]), "{:?}", against.body);

    // A change is a new version, and a run against it is new work, not the earlier run.
    let mut changed = issues.clone();
    changed["issues"][1]["kind"] = json!("missing_values");
    changed["issues"][1]["column"] = json!("note");
    let v2 = server.put("/api/v1/known-issues/erp.orders", None, &changed.to_string());
    assert_eq!(v2.body["data"]["set"]["version"], 2, "{:?}", v2.body);
    let history = server.get("/api/v1/known-issues/erp.orders", None);
    assert_eq!(history.body["data"]["history"].as_array().map(Vec::len), Some(2), "{:?}", history.body);
    let v1 = server.get("/api/v1/known-issues/erp.orders?version=1", None);
    assert_eq!(v1.body["data"]["set"]["issues"], issues["issues"]);
    // A bundle of the first run replays against version 1, on this very store, without
    // touching the store's declarations (version 2 stays the latest).
    let bytes = server.client.get(format!("{}/api/v1/runs/{id}/bundle.zip", server.url)).send().expect("bundle");
    let bundle_path = env.dir.path().join("known.zip");
    std::fs::write(&bundle_path, bytes.bytes().expect("bytes")).expect("write bundle");
    let out = env.run(&["replay", bundle_path.to_str().expect("utf-8"), "--json"]);
    let outcome: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        (outcome["fingerprint_matches"].clone(), outcome["report_matches"].clone()),
        (json!(true), json!(true)),
        "{outcome}"
    );
    let history = server.get("/api/v1/known-issues/erp.orders", None);
    assert_eq!(history.body["data"]["history"].as_array().map(Vec::len), Some(2), "{:?}", history.body);
    assert_eq!(history.body["data"]["set"]["issues"], changed["issues"], "the latest is still the latest");
    let again = submit(&server, json!({ "upload_id": upload_id, "dataset_kind": "erp.orders" }));
    assert_eq!(again.status, 201, "a new version is new work: {:?}", again.body);
    let detail = wait(&server, again.body["data"]["run"]["id"].as_str().expect("id"));
    let dir = run_dir(&env, detail["run"]["id"].as_str().expect("id"));
    let evaluation: Value =
        serde_json::from_slice(&std::fs::read(dir.join("evaluation.json")).expect("evaluation")).expect("json");
    assert_eq!(
        (evaluation["version"].clone(), evaluation["found"].as_array().map(Vec::len)),
        (json!(2), Some(2)),
        "{evaluation}"
    );
}

#[test]
fn identical_work_is_reused_fresh_runs_are_byte_identical_and_results_are_cached() {
    let (env, _) = env_with_plugins(&[]);
    let server = env.start();
    let upload_id = upload(&server, "orders.csv", ORDERS);
    let first = submit(&server, json!({ "upload_id": upload_id }));
    let first_id = first.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    wait(&server, &first_id);

    let again = submit(&server, json!({ "upload_id": upload_id }));
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["data"]["reused"], true);
    assert_eq!(again.body["data"]["run"]["id"], first_id.as_str());
    assert!(again.body["data"]["message"].as_str().is_some_and(|m| m.contains(&first_id)));

    let fresh = submit(&server, json!({ "upload_id": upload_id, "fresh": true }));
    assert_eq!(fresh.status, 201);
    let fresh_id = fresh.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    let detail = wait(&server, &fresh_id);
    assert_eq!(execution(&detail, "core.text_profile")["status"], "ok", "fresh runs reuse nothing");
    assert_eq!(
        normalized_report(&run_dir(&env, &first_id).join("report.json")),
        normalized_report(&run_dir(&env, &fresh_id).join("report.json")),
        "same input, plugins, settings and seed: same report"
    );

    // A different plan (inspect alone) is new work, but its inspect step is identical.
    let partial = submit(&server, json!({ "upload_id": upload_id, "pipeline": ["core.inspect"] }));
    assert_eq!(partial.status, 201);
    let partial_id = partial.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    let detail = wait(&server, &partial_id);
    assert_eq!(detail["run"]["status"], "completed");
    let inspect = execution(&detail, "core.inspect");
    assert_eq!(inspect["status"], "cached", "{inspect}");
    assert!(inspect["cached_from"].as_str().is_some());

    // Another seed is other work.
    let seeded = submit(&server, json!({ "upload_id": upload_id, "seed": 7 }));
    assert_eq!(seeded.status, 201);
    assert_ne!(seeded.body["data"]["run"]["fingerprint"], first.body["data"]["run"]["fingerprint"]);
    // A whole number written as a float (as JavaScript sends one) is the same seed; a
    // fraction is refused.
    let same = submit(&server, json!({ "upload_id": upload_id, "seed": 7.0 }));
    assert_eq!(same.body["data"]["run"]["fingerprint"], seeded.body["data"]["run"]["fingerprint"], "{:?}", same.body);
    let fraction = submit(&server, json!({ "upload_id": upload_id, "seed": 7.5 }));
    assert_eq!(fraction.status, 422, "{:?}", fraction.body);
    // So is a whole float in a plugin's integer setting: accepted, stored and run as one.
    let settings = json!({ "core.text_profile": { "long_line_bytes": 5000.0 } });
    let floated = submit(&server, json!({ "upload_id": upload_id, "settings": settings }));
    assert_eq!(floated.status, 201, "{:?}", floated.body);
    let run = &floated.body["data"]["run"];
    assert_eq!(run["settings"]["plugins"]["core.text_profile"]["long_line_bytes"], json!(5000), "{run}");
    let id = run["id"].as_str().expect("id").to_owned();
    let detail = wait(&server, &id);
    assert_eq!(execution(&detail, "core.text_profile")["status"], "ok", "{detail}");
}

#[test]
fn bad_run_requests_are_refused_with_the_reason() {
    let (env, _) = env_with_plugins(&[]);
    let server = env.start();
    let upload_id = upload(&server, "orders.csv", ORDERS);
    let unknown = submit(&server, json!({ "upload_id": upload_id, "pipeline": ["no.such"] }));
    assert_eq!(unknown.status, 422);
    assert!(unknown.body["error"]["message"].as_str().is_some_and(|m| m.contains("no.such")));
    let settings = submit(
        &server,
        json!({ "upload_id": upload_id, "settings": { "core.text_profile": { "long_line_bytes": 0 } } }),
    );
    assert_eq!(settings.status, 422);
    assert!(
        settings.body["error"]["message"].as_str().is_some_and(|m| m.contains("core.text_profile")),
        "{:?}",
        settings.body
    );
    assert_eq!(submit(&server, json!({ "upload_id": "upl_missing" })).status, 404);
    let deselected = server.post(
        "/api/v1/runs/plan",
        None,
        &json!({ "upload_id": upload_id, "deselect": ["core.inspect"] }).to_string(),
    );
    assert_eq!(deselected.status, 422, "nothing left to run: {:?}", deselected.body);
}

#[test]
fn each_plugin_gets_its_own_status_and_violations_are_recorded_with_reasons() {
    let plugins = [
        ("net", python_plugin("bad.net", ""), "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\n"),
        ("writer", python_plugin("bad.writer", ""), "open('/etc/vigil-pwned', 'w').write('x')\n"),
        ("slow", python_plugin("bad.slow", "[budgets]\ntime_limit_ms = 500"), "while True:\n    pass\n"),
        ("crash", python_plugin("bad.crash", ""), "raise SystemExit('cannot parse column 3')\n"),
        ("liar", python_plugin("bad.liar", ""), "print('not json')\n"),
        (
            "sloppy",
            python_plugin("bad.sloppy", ""),
            "import json\nprint(json.dumps({'status': 'ok', 'findings': [{'kind': 'x', 'title': 'y', 'severity': 'low', 'measurement_type': 'measured'}]}))\n",
        ),
        (
            "claimer",
            python_plugin("bad.claimer", ""),
            "import json\nprint(json.dumps({'status': 'ok', 'dataset': {'data_hash': 'sha256:00', 'rows': 1, 'columns': 1}}))\n",
        ),
        ("after", python_plugin("bad.after", "depends_on = [\"bad.crash\"]"), "print('{\"status\": \"ok\"}')\n"),
    ];
    let specs: Vec<(&str, &str, &str)> = plugins.iter().map(|(n, m, s)| (*n, m.as_str(), *s)).collect();
    let (env, _) = env_with_plugins(&specs);
    let server = env.start();
    let upload_id = upload(&server, "orders.csv", ORDERS);
    let pipeline = [
        "core.inspect",
        "bad.net",
        "bad.writer",
        "bad.slow",
        "bad.crash",
        "bad.liar",
        "bad.sloppy",
        "bad.claimer",
        "bad.after",
    ];
    let created = submit(&server, json!({ "upload_id": upload_id, "pipeline": pipeline }));
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    let detail = wait(&server, &id);
    assert_eq!(detail["run"]["status"], "completed_with_errors", "{detail}");

    let check = |plugin: &str, status: &str, needle: &str| {
        let e = execution(&detail, plugin);
        assert_eq!(e["status"], status, "{plugin}: {e}");
        let error = e["error"].as_str().unwrap_or("");
        assert!(error.contains(needle), "{plugin}: {error:?} should mention {needle:?}");
    };
    check("core.inspect", "ok", "");
    check("bad.net", "violation", "network permission");
    check("bad.writer", "violation", "denied access outside its allowlist");
    check("bad.slow", "timeout", "500 ms");
    check("bad.crash", "error", "cannot parse column 3");
    check("bad.liar", "error", "not JSON");
    check("bad.sloppy", "error", "needs evidence");
    check("bad.claimer", "error", "only ingest plugins");
    check("bad.after", "skipped", "dependency bad.crash did not succeed");
    assert_eq!(execution(&detail, "bad.net")["violations"][0]["kind"], "network");
    assert_eq!(execution(&detail, "bad.slow")["violations"][0]["kind"], "time");
    assert!(!Path::new("/etc/vigil-pwned").exists());

    // The report lists every plugin's outcome; the stderr log is kept beside it.
    let report = server.get(&format!("/api/v1/runs/{id}/report"), None).body["data"].clone();
    let statuses: Vec<(String, String)> = report["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .map(|p| (p["plugin_id"].as_str().unwrap_or("").to_owned(), p["status"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert!(statuses.contains(&("bad.net".to_owned(), "violation".to_owned())), "{statuses:?}");
    let log = std::fs::read_to_string(run_dir(&env, &id).join("plugins/bad.crash/stderr.log")).expect("log");
    assert!(log.contains("cannot parse column 3"), "{log}");

    // A run in which nothing succeeds has failed.
    let hopeless = submit(&server, json!({ "upload_id": upload_id, "pipeline": ["bad.crash", "bad.after"] }));
    let hopeless_id = hopeless.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    let failed = wait(&server, &hopeless_id);
    assert_eq!(failed["run"]["status"], "failed", "{failed}");
    assert!(failed["run"]["error"].as_str().is_some_and(|e| e.contains("bad.crash")), "{failed}");

    // Retrying re-runs only what did not succeed; the outcome is the same.
    let retried = server.post(&format!("/api/v1/runs/{id}/retry"), None, "");
    assert_eq!(retried.status, 200, "{:?}", retried.body);
    let detail = wait(&server, &id);
    assert_eq!(detail["run"]["status"], "completed_with_errors");
    assert_eq!(execution(&detail, "core.inspect")["status"], "ok");
}

const SLEEPY: &str = "import json, sys, time\nrequest = json.load(sys.stdin)\nprint('going to sleep', file=sys.stderr, flush=True)\ntime.sleep(float(request['config'].get('seconds', 3)))\nprint(json.dumps({'status': 'ok', 'summary': 'slept'}))\n";

#[test]
fn a_run_is_watched_live_and_can_be_canceled() {
    let manifest = python_plugin("slow.sleep", "depends_on = [\"core.inspect\"]");
    let (env, _) = env_with_plugins(&[("sleep", &manifest, SLEEPY)]);
    let server = env.start();
    let upload_id = upload(&server, "orders.csv", ORDERS);

    // Live events for a short run: state first, then the plugins, then the end.
    let quick = submit(
        &server,
        json!({ "upload_id": upload_id, "pipeline": ["slow.sleep"], "settings": { "slow.sleep": { "seconds": 0.3 } } }),
    );
    let id = quick.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    let text = server
        .client
        .get(format!("{}/api/v1/runs/{id}/events", server.url))
        .timeout(Duration::from_secs(30))
        .send()
        .expect("events")
        .text()
        .expect("stream ends with the run");
    let events: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(events.first(), Some(&"state"), "{text}");
    assert!(events.contains(&"plugin_finished"), "{text}");
    assert!(text.contains("going to sleep"), "stderr lines arrive as log events: {text}");
    assert_eq!(events.last(), Some(&"run_finished"), "{text}");

    // The same events over a WebSocket on the same path.
    let ws_run = submit(
        &server,
        json!({ "upload_id": upload_id, "pipeline": ["slow.sleep"], "settings": { "slow.sleep": { "seconds": 0.4 } } }),
    );
    let id = ws_run.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    let ws_url = format!("{}/api/v1/runs/{id}/events", server.url.replacen("http://", "ws://", 1));
    let (mut socket, _) = tungstenite::connect(ws_url.as_str()).expect("websocket");
    let mut kinds = Vec::new();
    while let Ok(message) = socket.read() {
        if let tungstenite::Message::Text(text) = message {
            let event: Value = serde_json::from_str(text.as_str()).expect("json");
            kinds.push(event["event"].as_str().unwrap_or("").to_owned());
        }
    }
    assert_eq!(kinds.first().map(String::as_str), Some("state"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "plugin_finished"), "{kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("run_finished"), "{kinds:?}");

    let slow = submit(
        &server,
        json!({ "upload_id": upload_id, "pipeline": ["slow.sleep"], "settings": { "slow.sleep": { "seconds": 30 } } }),
    );
    let id = slow.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while execution(&server.get(&format!("/api/v1/runs/{id}"), None).body["data"], "slow.sleep")["status"] != "running"
    {
        assert!(Instant::now() < deadline, "the plugin never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let canceled = server.post(&format!("/api/v1/runs/{id}/cancel"), None, "");
    assert_eq!(canceled.status, 200, "{:?}", canceled.body);
    let detail = wait(&server, &id);
    assert!(started.elapsed() < Duration::from_secs(10), "the running plugin was killed");
    assert_eq!(detail["run"]["status"], "canceled");
    assert_eq!(execution(&detail, "slow.sleep")["status"], "skipped");
    assert_eq!(server.post(&format!("/api/v1/runs/{id}/cancel"), None, "").status, 409, "already ended");
}

#[test]
fn a_run_killed_with_the_server_is_crashed_after_restart_and_retry_completes_it() {
    let manifest = python_plugin("slow.sleep", "");
    let (env, _) = env_with_plugins(&[("sleep", &manifest, SLEEPY)]);
    let server = env.start();
    let upload_id = upload(&server, "orders.csv", ORDERS);
    let created = submit(
        &server,
        json!({ "upload_id": upload_id, "pipeline": ["core.inspect", "slow.sleep"], "settings": { "slow.sleep": { "seconds": 2 } } }),
    );
    let id = created.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    // Kill once the quick plugin has finished (its result must survive) and the slow one
    // is mid-way; the two may run side by side, so wait for both.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let detail = server.get(&format!("/api/v1/runs/{id}"), None).body["data"].clone();
        if execution(&detail, "slow.sleep")["status"] == "running"
            && execution(&detail, "core.inspect")["status"] == "ok"
        {
            break;
        }
        assert!(Instant::now() < deadline, "the plugins never reached the point to crash at: {detail}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.get(&format!("/api/v1/runs/{id}"), None).body["data"]["run"]["status"], "running");
    server.kill();

    let server = env.start();
    let detail = server.get(&format!("/api/v1/runs/{id}"), None).body["data"].clone();
    assert_eq!(detail["run"]["status"], "crashed", "{detail}");
    assert!(detail["run"]["error"].as_str().is_some_and(|e| e.contains("ended before the run finished")));
    assert!(env.data().join("runs/.partial").join(&id).join("run_manifest.json").is_file(), "partial work is kept");
    assert_eq!(execution(&detail, "core.inspect")["status"], "ok");

    let retried = server.post(&format!("/api/v1/runs/{id}/retry"), None, "");
    assert_eq!(retried.status, 200, "{:?}", retried.body);
    let started = Instant::now();
    let detail = wait(&server, &id);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(detail["run"]["status"], "completed", "{detail}");
    assert!(run_dir(&env, &id).join("report.json").is_file());
}

/// Copies a folder (files only), keeping it readable by the sandbox user.
fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The Rust example plugin's binary, built if the workspace build did not make it.
fn rust_example_binary() -> PathBuf {
    let dir = Path::new(crate::support::BIN).parent().expect("target dir").to_owned();
    let binary = dir.join("line-lengths");
    if !binary.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", "vigil-example-line-lengths"])
            .status()
            .expect("cargo build");
        assert!(status.success(), "building the Rust example plugin failed");
    }
    binary
}

#[test]
fn the_example_plugins_in_python_and_rust_run_and_pass_their_self_tests() {
    let (env, plugins) = env_with_plugins(&[]);
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plugins");
    copy_folder(&examples.join("python-word-stats"), &plugins.join("python-word-stats"));
    let rust = plugins.join("rust-line-lengths");
    std::fs::create_dir_all(rust.join("bin")).expect("bin");
    std::fs::copy(examples.join("rust-line-lengths/plugin.toml"), rust.join("plugin.toml")).expect("manifest");
    copy_folder(&examples.join("rust-line-lengths/fixtures"), &rust.join("fixtures"));
    std::fs::copy(rust_example_binary(), rust.join("bin/line-lengths")).expect("binary");

    let doctor = env.run(&["plugins", "doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.status.success(), "{text}\n{}", String::from_utf8_lossy(&doctor.stderr));
    assert!(text.contains("example.word_stats") && text.contains("7 plugins"), "{text}");

    let server = env.start();
    let upload_id = upload(&server, "notes.txt", b"one two three\nbuffalo buffalo buffalo buffalo\n\nshort\n");
    let created = submit(&server, json!({ "upload_id": upload_id, "settings": { "example.line_lengths": {} } }));
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    let detail = wait(&server, &id);
    assert_eq!(detail["run"]["status"], "completed", "{detail}");
    for plugin in ["core.inspect", "core.text_profile", "example.word_stats", "example.line_lengths"] {
        assert_eq!(execution(&detail, plugin)["status"], "ok", "{plugin}: {detail}");
    }
    let report = server.get(&format!("/api/v1/runs/{id}/report"), None).body["data"].clone();
    assert_eq!(report["metrics"]["example.word_stats"]["words"], 8, "{report}");
    assert_eq!(report["metrics"]["example.line_lengths"]["lines"], 4, "{report}");
    let repeated =
        report["findings"].as_array().expect("findings").iter().find(|f| f["kind"] == "repeated_word").cloned();
    assert_eq!(repeated.map(|f| f["evidence"]["rows"].clone()), Some(json!([2])));
    let artifact = run_dir(&env, &id).join("plugins/example.word_stats/artifacts/word_counts.json");
    let counts: Value = serde_json::from_slice(&std::fs::read(artifact).expect("artifact")).expect("json");
    assert_eq!(counts["buffalo"], 4);
}

const LEAKY: &str = "import json, os, sys\nrequest = json.load(sys.stdin)\nopen(os.path.join(request['output_dir'], 'trace.log'), 'w').write('POST /v1/chat\\nAuthorization: Bearer sk-abcdefghijklmnopqrstuvwxyz123456\\n' + 'x' * 5000)\nprint(json.dumps({'status': 'ok', 'artifacts': [{'path': 'trace.log'}]}))\n";

#[test]
fn artifacts_are_served_safely_and_a_bundle_replays_elsewhere() {
    let manifest = python_plugin("leaky.trace", "");
    let (env, _) = env_with_plugins(&[("leaky", &manifest, LEAKY)]);
    let server = env.start();
    let upload_id = upload(&server, "orders.csv", ORDERS);
    let created = submit(&server, json!({ "upload_id": upload_id }));
    let id = created.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    assert_eq!(wait(&server, &id)["run"]["status"], "completed");

    let index = server.get(&format!("/api/v1/runs/{id}/artifacts"), None).body["data"].clone();
    let paths: Vec<&str> = index.as_array().expect("index").iter().filter_map(|e| e["path"].as_str()).collect();
    for expected in [
        "report.json",
        "run_manifest.json",
        "plugins/leaky.trace/artifacts/trace.log",
        "plugins/core.inspect/stderr.log",
    ] {
        assert!(paths.contains(&expected), "{expected} missing from {paths:?}");
    }
    assert!(!paths.iter().any(|p| p.contains("/scratch/")), "scratch is not a result: {paths:?}");

    let get = |path: &str| {
        server.client.get(format!("{}/api/v1/runs/{id}/artifacts/{path}", server.url)).send().expect("get")
    };
    let trace = get("plugins/leaky.trace/artifacts/trace.log?max_bytes=100");
    assert_eq!(trace.status(), 200);
    assert_eq!(trace.headers()["x-vigil-truncated"], "true");
    assert_eq!(trace.headers()["x-vigil-total-bytes"], "5072");
    assert_eq!(trace.headers()["x-vigil-redactions"], "1");
    let text = trace.text().expect("text");
    assert!(text.contains("Authorization: [REDACTED]") && !text.contains("sk-abcdef"), "{text}");
    let raw = get("plugins/leaky.trace/artifacts/trace.log?redact=false&max_bytes=100").text().expect("text");
    assert!(raw.contains("sk-abcdef"), "redaction can be turned off: {raw}");

    assert_eq!(get("..%2F..%2Fvigil.db").status(), 422, "traversal is refused");
    assert_eq!(get("%2Fetc%2Fpasswd").status(), 422, "absolute paths are refused");
    std::os::unix::fs::symlink("/etc/passwd", run_dir(&env, &id).join("escape")).expect("symlink");
    assert_eq!(get("escape").status(), 422, "a link out of the run is refused");
    assert_eq!(get("plugins/leaky.trace/scratch/tmp").status(), 404);
    assert_eq!(get("no-such-file").status(), 404);
    std::fs::remove_file(run_dir(&env, &id).join("escape")).expect("rm");

    // The bundle carries the external plugin's source, so another machine can replay it.
    let zip = server.client.get(format!("{}/api/v1/runs/{id}/bundle.zip", server.url)).send().expect("bundle");
    assert_eq!(zip.status(), 200);
    assert_eq!(zip.headers()["content-type"], "application/zip");
    let bytes = zip.bytes().expect("bytes");
    let bundle_path = env.dir.path().join("run.zip");
    std::fs::write(&bundle_path, &bytes).expect("write bundle");

    let elsewhere = Env::new();
    std::fs::set_permissions(elsewhere.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = elsewhere.run(&["replay", bundle_path.to_str().expect("utf-8"), "--json"]);
    let outcome: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{outcome}");
    assert_eq!(outcome["fingerprint_matches"], true);
    assert_eq!(outcome["report_matches"], true);
    assert_eq!(outcome["status"], "completed");
    assert_ne!(outcome["replay_run"], id.as_str());

    // A tampered bundle is caught: the findings no longer match.
    let work = env.dir.path().join("tampered");
    std::fs::create_dir_all(&work).expect("mkdir");
    let mut archive = zip_entries(&bytes);
    for (name, content) in archive.iter_mut() {
        if name == "report.json" {
            let mut report: Value = serde_json::from_slice(content).expect("report");
            report["findings"][0]["finding_id"] = json!("0000000000000000");
            *content = serde_json::to_vec_pretty(&report).expect("json");
        }
    }
    let tampered = env.dir.path().join("tampered.zip");
    write_zip(&tampered, &archive);
    let out = elsewhere.run(&["replay", tampered.to_str().expect("utf-8"), "--json"]);
    assert!(!out.status.success(), "a replay that differs exits 1");
    let outcome: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(outcome["missing_findings"], json!(["0000000000000000"]));
}

fn zip_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).expect("entry");
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).expect("read");
            (entry.name().expect("name").into_owned(), content)
        })
        .collect()
}

fn write_zip(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("create"));
    for (name, content) in entries {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).expect("start");
        std::io::Write::write_all(&mut zip, content).expect("write");
    }
    zip.finish().expect("finish");
}

#[test]
fn gc_removes_old_unpinned_runs_and_unused_content_and_never_a_pinned_run() {
    let (env, _) = env_with_plugins(&[]);
    let server = env.start();
    let kept_upload = upload(&server, "kept.csv", ORDERS);
    let gone_upload = upload(&server, "gone.csv", b"a,b\n1,2\n");
    let idle_upload = upload(&server, "idle.csv", b"x\n1\n");
    let run_of = |upload_id: &str| {
        let created = submit(&server, json!({ "upload_id": upload_id }));
        let id = created.body["data"]["run"]["id"].as_str().expect("id").to_owned();
        wait(&server, &id);
        id
    };
    let pinned = run_of(&kept_upload);
    let removed = run_of(&gone_upload);
    assert_eq!(server.post(&format!("/api/v1/runs/{pinned}/pin"), None, "").body["data"]["pinned"], true);

    let dry = server.post("/api/v1/gc", None, &json!({ "older_than": "0s", "dry_run": true }).to_string());
    assert_eq!(dry.status, 200, "{:?}", dry.body);
    assert_eq!(dry.body["data"]["runs_removed"], json!([removed]));
    assert!(run_dir(&env, &removed).is_dir(), "a dry run removes nothing");

    let out = env.run(&["gc", "--older-than", "0s", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["runs_removed"], json!([removed]));
    assert_eq!(report["pinned_runs_kept"], 1);
    let uploads = report["uploads_removed"].as_array().expect("uploads").clone();
    assert!(uploads.contains(&json!(gone_upload)) && uploads.contains(&json!(idle_upload)), "{report}");
    assert!(!uploads.contains(&json!(kept_upload)), "the pinned run's upload stays");
    assert_eq!(report["blobs_removed"].as_array().map(Vec::len), Some(2));

    // The pinned run and everything it uses are intact.
    assert_eq!(server.get(&format!("/api/v1/runs/{pinned}"), None).status, 200);
    assert!(run_dir(&env, &pinned).join("report.json").is_file());
    assert_eq!(server.get(&format!("/api/v1/uploads/{kept_upload}"), None).status, 200);
    // The removed run is explained, not just gone.
    assert!(!run_dir(&env, &removed).exists());
    let gone = server.get(&format!("/api/v1/runs/{removed}"), None);
    assert_eq!(gone.status, 410, "{:?}", gone.body);
    assert_eq!(gone.body["error"]["details"]["tombstone"]["kind"], "run");
    let audit = server.get("/api/v1/audit?action=gc.remove", None).body["data"]["items"].clone();
    let targets: Vec<&str> = audit.as_array().expect("items").iter().filter_map(|e| e["target"].as_str()).collect();
    assert!(targets.contains(&format!("run:{removed}").as_str()), "{targets:?}");
    assert_eq!(env.run(&["audit", "verify"]).status.code(), Some(0));

    // Unpinned, it goes too.
    assert_eq!(server.post(&format!("/api/v1/runs/{pinned}/unpin"), None, "").status, 200);
    let again = server.post("/api/v1/gc", None, &json!({ "older_than": "0s" }).to_string());
    assert_eq!(again.body["data"]["runs_removed"], json!([pinned]));
    assert_eq!(server.post("/api/v1/gc", None, &json!({ "older_than": "soon" }).to_string()).status, 422);
}

fn zip_folder(folder: &Path) -> Vec<u8> {
    let mut entries = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            if entry.file_type().expect("type").is_dir() {
                walk(root, &entry.path(), out);
            } else {
                let name = entry.path().strip_prefix(root).expect("prefix").to_string_lossy().into_owned();
                out.push((name, std::fs::read(entry.path()).expect("read")));
            }
        }
    }
    walk(folder, folder, &mut entries);
    let path = folder.with_extension("zip");
    write_zip(&path, &entries);
    std::fs::read(path).expect("zip")
}

#[test]
fn installed_plugins_stay_disabled_until_approved_and_can_be_updated_and_rolled_back() {
    let (env, _) = env_with_plugins(&[]);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plugins/python-word-stats");
    let out = env.run(&["plugins", "install", example.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT approved; disabled"));

    let server = env.start();
    let listed = server.get("/api/v1/plugins/example.word_stats", None).body["data"].clone();
    assert_eq!((listed["enabled"].clone(), listed["permissions_approved"].clone()), (json!(false), json!(false)));
    let text = upload(&server, "notes.txt", b"buffalo buffalo buffalo buffalo\n");
    let plan =
        server.post("/api/v1/runs/plan", None, &json!({ "upload_id": text }).to_string()).body["data"]["plan"].clone();
    assert!(
        plan["excluded"]
            .as_array()
            .expect("excluded")
            .contains(&json!({ "plugin_id": "example.word_stats", "reason": "disabled" })),
        "{plan}"
    );
    let named = submit(&server, json!({ "upload_id": text, "pipeline": ["example.word_stats"] }));
    assert_eq!(named.status, 422, "{:?}", named.body);

    let early = server.post("/api/v1/plugins/example.word_stats/enable", None, "");
    assert_eq!(early.status, 409, "{:?}", early.body);
    assert!(early.body["error"]["message"].as_str().is_some_and(|m| m.contains("approve them first")));
    assert_eq!(server.post("/api/v1/plugins/example.word_stats/approve", None, "").status, 200);
    assert_eq!(server.post("/api/v1/plugins/example.word_stats/enable", None, "").body["data"]["enabled"], true);
    let run = submit(&server, json!({ "upload_id": text, "pipeline": ["example.word_stats"] }));
    assert_eq!(run.status, 201, "{:?}", run.body);
    let id = run.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    assert_eq!(wait(&server, &id)["run"]["status"], "completed");

    // An update asking for the same permissions stays approved and enabled.
    let v2 = env.dir.path().join("word-stats-v2");
    copy_folder(&example, &v2);
    let manifest = std::fs::read_to_string(v2.join("plugin.toml"))
        .expect("manifest")
        .replace("version = \"1.0.0\"", "version = \"1.1.0\"");
    std::fs::write(v2.join("plugin.toml"), manifest).expect("write");
    let zip_id = upload(&server, "word-stats-v2.zip", &zip_folder(&v2));
    let updated = server.post("/api/v1/plugins/install", None, &json!({ "upload_id": zip_id }).to_string());
    assert_eq!(updated.status, 201, "{:?}", updated.body);
    assert_eq!(updated.body["data"]["active"]["version"], "1.1.0");
    assert_eq!(updated.body["data"]["enabled"], true, "same permissions, already approved");

    // One asking for the network is disabled until someone approves that.
    let v3 = env.dir.path().join("word-stats-v3");
    copy_folder(&v2, &v3);
    let manifest = std::fs::read_to_string(v3.join("plugin.toml"))
        .expect("manifest")
        .replace("version = \"1.1.0\"", "version = \"2.0.0\"")
        .replace("network = false", "network = true");
    std::fs::write(v3.join("plugin.toml"), manifest).expect("write");
    let zip_id = upload(&server, "word-stats-v3.zip", &zip_folder(&v3));
    let risky = server.post("/api/v1/plugins/install", None, &json!({ "upload_id": zip_id }).to_string());
    assert_eq!(risky.body["data"]["active"]["version"], "2.0.0");
    assert_eq!(risky.body["data"]["enabled"], false, "new permissions need approval: {:?}", risky.body);
    assert_eq!(server.get("/api/v1/plugins/example.word_stats", None).body["data"]["version"], "2.0.0");

    // Rolling back returns to 1.1.0, which was approved, so it runs again.
    let rolled = server.post("/api/v1/plugins/example.word_stats/rollback", None, "");
    assert_eq!(rolled.body["data"]["active"]["version"], "1.1.0", "{:?}", rolled.body);
    assert_eq!(rolled.body["data"]["enabled"], false, "rollback does not enable on its own");
    assert_eq!(server.post("/api/v1/plugins/example.word_stats/enable", None, "").body["data"]["enabled"], true);
    assert_eq!(server.get("/api/v1/plugins/example.word_stats", None).body["data"]["version"], "1.1.0");

    let audit = server.get("/api/v1/audit?limit=100", None).body["data"]["items"].clone();
    let actions: Vec<&str> = audit.as_array().expect("items").iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["plugins.install", "plugins.approve", "plugins.enable", "plugins.rollback"] {
        assert!(actions.contains(&action), "{action} not audited: {actions:?}");
    }
}

const DB_READER: &str = "import json, os, sqlite3, sys\nrequest = json.load(sys.stdin)\npath = os.environ.get('VIGIL_DATABASE') or request['config']['path']\ndb = sqlite3.connect(f'file:{path}?mode=ro', uri=True)\nn = db.execute('SELECT COUNT(*) FROM uploads').fetchone()[0]\nprint(json.dumps({'status': 'ok', 'metrics': {'uploads': n}}))\n";

/// A plugin that swallows the refusals it provokes (reading the Vigil database without the
/// permission, reading /etc/shadow) still succeeds, but every refusal is listed with the
/// execution, through the API, naming what was attempted.
#[test]
fn denials_a_plugin_survives_are_listed_with_its_execution() {
    let sneaky = python_plugin("sneaky.reader", "");
    let script = "import json, sys\nrequest = json.load(sys.stdin)\nfor path in (request['config']['path'], '/etc/shadow'):\n    try:\n        open(path, 'rb').read(16)\n    except OSError:\n        pass\nprint(json.dumps({'status': 'ok', 'summary': 'nothing to see'}))\n";
    let (env, _) = env_with_plugins(&[("sneaky", &sneaky, script)]);
    let server = env.start();
    let upload_id = upload(&server, "orders.csv", ORDERS);
    let db = env.db().display().to_string();
    let created = submit(
        &server,
        json!({ "upload_id": upload_id, "pipeline": ["sneaky.reader"], "settings": { "sneaky.reader": { "path": db } } }),
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    let detail = wait(&server, &id);
    let sneaky = execution(&detail, "sneaky.reader");
    assert_eq!(sneaky["status"], "ok", "{sneaky}");
    let reasons: Vec<&str> = sneaky["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .inspect(|v| assert_eq!(v["kind"], "filesystem", "{v}"))
        .filter_map(|v| v["reason"].as_str())
        .collect();
    assert!(reasons[0].contains(&format!("reading {db} (openat: EACCES")), "{reasons:?}");
    // A path that does not exist fails its lookup before the sandbox is asked.
    if Path::new("/etc/shadow").exists() {
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[1].contains("reading /etc/shadow"), "{reasons:?}");
    }
    assert!(sneaky["enforced"]["denials"]["enforced"].as_bool().unwrap_or(false), "{sneaky}");
}

#[test]
fn database_reads_need_the_permission_and_an_unreadable_plugin_is_blocked() {
    let with = python_plugin("db.allowed", "[permissions]\ndatabase_read = true");
    let without = python_plugin("db.denied", "");
    let locked = python_plugin("locked.plugin", "");
    let (env, plugins) = env_with_plugins(&[
        ("allowed", &with, DB_READER),
        (
            "denied",
            &without,
            "import json, sys\nrequest = json.load(sys.stdin)\nprint(open(request['config']['path'], 'rb').read(16))\n",
        ),
        ("locked", &locked, "print('{\"status\": \"ok\"}')\n"),
    ]);
    std::fs::set_permissions(plugins.join("locked"), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let server = env.start();
    let upload_id = upload(&server, "orders.csv", ORDERS);
    let db = env.db().display().to_string();
    let created = submit(
        &server,
        json!({ "upload_id": upload_id, "pipeline": ["db.allowed", "db.denied", "locked.plugin"], "settings": { "db.denied": { "path": db } } }),
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    let detail = wait(&server, &id);
    assert_eq!(execution(&detail, "db.allowed")["status"], "ok", "{detail}");
    assert_eq!(execution(&detail, "db.denied")["status"], "violation", "{detail}");
    assert_eq!(execution(&detail, "db.denied")["violations"][0]["kind"], "filesystem");
    if nix::unistd::Uid::effective().is_root() {
        let blocked = execution(&detail, "locked.plugin");
        assert_eq!(blocked["status"], "blocked", "{blocked}");
        assert!(blocked["error"].as_str().is_some_and(|e| e.contains("cannot read the plugin's folder")), "{blocked}");
    }
    let report = server.get(&format!("/api/v1/runs/{id}/report"), None).body["data"].clone();
    assert_eq!(report["metrics"]["db.allowed"]["uploads"], 1);
}

/// Every log line of a run carries its id (and a plugin's line its plugin), whichever request
/// started it; a model call's lines carry its agent.
#[test]
fn log_lines_carry_the_run_plugin_and_agent_they_belong_to() {
    let (mut env, _) = env_with_plugins(&[]);
    env.set("VIGIL_LOG", "info");
    let mut server = env.start();
    let mut stderr = server.child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let upload_id = upload(&server, "orders.csv", ORDERS);
    let created = submit(&server, json!({ "upload_id": upload_id }));
    let id = created.body["data"]["run"]["id"].as_str().expect("id").to_owned();
    assert_eq!(wait(&server, &id)["run"]["status"], "completed");
    let call = server
        .client
        .post(format!("{}/v1/chat/completions", server.url))
        .header("content-type", "application/json")
        .header("x-agent-id", "logged-agent")
        .body(r#"{"model": "gpt-4o", "messages": []}"#)
        .send()
        .expect("send");
    assert!(call.status().as_u16() >= 400, "no provider is configured: refused, and logged");
    server.stop();
    let log = log.join().expect("log");

    let run_span = format!("run{{run_id={id}}}");
    assert!(log.lines().any(|l| l.contains(&run_span) && l.contains("run finished")), "{log}");
    assert!(
        log.lines().any(|l| l.contains(&run_span)
            && l.contains("plugin{plugin_id=core.inspect")
            && l.contains("plugin finished")),
        "{log}"
    );
    assert!(log.lines().any(|l| l.contains("agent_id=logged-agent") && l.contains("/v1/chat/completions")), "{log}");
}
