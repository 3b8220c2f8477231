//! Keeping Vigil: keys, the audit chain, the database, the immune log.

use super::*;

pub(super) fn immune(global: &Global, cmd: ImmuneCommand) -> anyhow::Result<ExitCode> {
    use std::io::{BufRead, Write};
    match cmd {
        ImmuneCommand::Export { output } => {
            let (_, store) = open_store(global, false)?;
            let lines = match output {
                Some(path) => {
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut out = std::io::BufWriter::new(file);
                    let lines = vigil_services::immune::export(&store, &mut out)?;
                    out.flush().with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("wrote {lines} logged inputs to {}", path.display());
                    lines
                }
                None => {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    let lines = vigil_services::immune::export(&store, &mut out)?;
                    out.flush()?;
                    lines
                }
            };
            tracing::debug!(lines, "immune log exported");
            Ok(ExitCode::SUCCESS)
        }
        ImmuneCommand::Replay { file, decisions, json } => {
            let config = load_config(global)?;
            let reader = std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?;
            let mut replayer =
                vigil_immune::replay::Replayer::new(vigil_services::immune::engine_config(&config.immune));
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for line in std::io::BufReader::new(reader).lines() {
                let line = line.with_context(|| format!("reading {}", file.display()))?;
                let recomputed = replayer.line(&line).with_context(|| format!("replaying {}", file.display()))?;
                if decisions {
                    for d in recomputed {
                        writeln!(out, "{}", serde_json::to_string(&d)?)?;
                    }
                }
            }
            out.flush()?;
            let summary = replayer.summary();
            if json {
                println!("{}", serde_json::to_string_pretty(summary)?);
            } else if !decisions {
                if let Some(seq) = summary.started_from_snapshot {
                    println!("started from the snapshot after input {seq}");
                }
                println!(
                    "replayed {} inputs: {} decisions; {} compared with the recorded ones, {} differ",
                    summary.inputs, summary.decisions, summary.compared, summary.mismatches
                );
                for m in &summary.first_mismatches {
                    println!(
                        "line {} (seq {:?}): recorded {} decisions, replayed {}",
                        m.line,
                        m.seq,
                        m.recorded.len(),
                        m.replayed.len()
                    );
                    println!("  recorded: {}", serde_json::to_string(&m.recorded)?);
                    println!("  replayed: {}", serde_json::to_string(&m.replayed)?);
                }
            }
            Ok(if summary.mismatches == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

pub(super) fn keys(global: &Global, cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    let (_, store) = open_store(global, matches!(cmd, KeysCommand::Create { .. }))?;
    match cmd {
        KeysCommand::Create { name, scope } => {
            let body = serde_json::json!({ "name": name, "scope": scope });
            let audit = cli_audit("keys.create", format!("key-name:{name}"), &body);
            let created = store.create_key(&name, scope, "cli", Some(&audit))?;
            eprintln!(
                "Created {} key {:?} (id {}). Store it now: it will not be shown again.",
                scope, name, created.record.id
            );
            println!("{}", created.secret);
        }
        KeysCommand::List { all, json } => {
            let keys = store.list_keys(all)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else if keys.is_empty() {
                eprintln!("no keys; create one with `vigil keys create --name NAME --scope read|write|admin`");
            } else {
                println!("{:<16}  {:<6}  {:<27}  {:<12}  NAME", "ID", "SCOPE", "CREATED", "STATE");
                for key in keys {
                    let state = if key.revoked_at.is_some() { "revoked" } else { "active" };
                    println!("{:<16}  {:<6}  {:<27}  {:<12}  {}", key.id, key.scope, key.created_at, state, key.name);
                }
            }
        }
        KeysCommand::Revoke { id } => {
            let id: KeyId = id.parse()?;
            let audit = cli_audit("keys.revoke", format!("/api/v1/keys/{id}"), &serde_json::json!({ "id": id }));
            let key = store.revoke_key(id, Some(&audit))?;
            println!("revoked key {} ({:?})", key.id, key.name);
        }
    }
    store.close()?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn audit_verify(global: &Global) -> anyhow::Result<ExitCode> {
    let (_, store) = open_store(global, false)?;
    let report = store.verify_audit()?;
    match report.first_break {
        None => {
            let head = report.head.map_or_else(|| "(empty)".to_owned(), |h| h.to_hex());
            println!("audit log intact: {} entries, head {head}", report.entries);
            Ok(ExitCode::SUCCESS)
        }
        Some(brk) => {
            println!("audit log BROKEN at entry {}: {}", brk.seq, brk.reason);
            println!("{} entries before it verified", report.entries);
            Ok(ExitCode::FAILURE)
        }
    }
}

pub(super) fn ledger_verify(global: &Global, json: bool) -> anyhow::Result<ExitCode> {
    let (_, store) = open_store(global, false)?;
    let report = store.verify_ledger()?;
    if json {
        let mut value = serde_json::to_value(&report)?;
        value["intact"] = report.intact().into();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        match &report.first_break {
            None => {
                let head = report.head.map_or_else(|| "(empty)".to_owned(), |h| h.to_hex());
                println!("ledger chain intact: {} entries, head {head}", report.entries);
            }
            Some(brk) => {
                println!("ledger BROKEN at entry {}: {}", brk.seq, brk.reason);
                println!("{} entries before it verified; counters not compared", report.entries);
            }
        }
        if report.first_break.is_none() {
            match report.mismatch_count {
                0 => println!("budget counters equal what the ledger derives"),
                n => {
                    println!("{n} budget counters differ from what the ledger derives:");
                    for mismatch in &report.mismatches {
                        println!("  {mismatch}");
                    }
                }
            }
        }
    }
    Ok(if report.intact() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub(super) fn db_doctor(global: &Global, json: bool) -> anyhow::Result<ExitCode> {
    let path = database_path(global);
    let report = vigil_store::doctor::doctor(&path)?;
    if json {
        let mut value = serde_json::to_value(&report)?;
        value["healthy"] = report.healthy().into();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("database:        {}", report.path.display());
        println!("integrity_check: {}", report.integrity.join("; "));
        println!("journal mode:    {}", report.journal_mode);
        println!(
            "wal:             {} bytes, {} frames, {} checkpointed{}",
            report.wal.wal_bytes,
            report.wal.log_frames,
            report.wal.checkpointed_frames,
            if report.wal.busy { " (checkpoint blocked by readers)" } else { "" }
        );
        println!("schema version:  {} (this binary: {})", report.schema_version, report.schema_head);
        println!(
            "size:            {} pages of {} bytes, {} free",
            report.page_count, report.page_size, report.freelist_count
        );
        if let Some(free) = report.free_bytes {
            println!("disk free:       {free} bytes");
        }
        match report.problems().as_slice() {
            [] => println!("status:          healthy"),
            problems => println!("status:          UNHEALTHY: {}", problems.join("; ")),
        }
    }
    Ok(if report.healthy() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub(super) fn db_backup(global: &Global, dest: &Path) -> anyhow::Result<ExitCode> {
    let source = database_path(global);
    if !source.exists() {
        bail!("no database at {}; nothing to back up", source.display());
    }
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} pages {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let pages = vigil_store::backup::backup(&source, dest, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    println!("backed up {} ({pages} pages) to {}", source.display(), dest.display());
    Ok(ExitCode::SUCCESS)
}
