//! `hms-console knowledge …`: query the knowledge registry, add to it, see what it holds, and
//! share it as JSON lines (export, import). Each command is a short function over the typed
//! client; the registry itself lives in the core.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::protocol::{KnowledgeItem, KnowledgeQuery, KnowledgeResult};

pub(super) const AFTER_HELP: &str = "\
Examples:
  hms-console knowledge query --tag recovery --related-to db-connection-lost \\
      --filter 'successful = true' --sort timestamp:desc --limit 5
  hms-console knowledge query --component api --tag issue --contains 'connection refused'
  hms-console knowledge add --component api --tag runbook --related-to oom '{\"strategy\":\"restart\"}'
  hms-console knowledge stats
  hms-console knowledge export --jsonl > team.jsonl
  hms-console knowledge import assets/knowledge/demo.jsonl

The registry lives in DATA_DIR/knowledge.db (SQLite); docs/knowledge.md describes its tables.";

const FILTER_HELP: &str = "\
A filter expression: `field op value`, joined with `and` / `or`, grouped with parentheses.
Fields: successful (true|false), severity (info|warning|error|critical), timestamp (RFC 3339 or
ms), duration_ms, component, issue_type, strategy. Ops: = != < <= > >=. Text in 'quotes'.
Example: \"successful = true and (severity >= error or duration_ms < 500)\"";

/// The knowledge registry's commands.
#[derive(Debug, Subcommand)]
pub(super) enum KnowledgeCommand {
    /// Search what the registry knows, newest first.
    #[command(
        after_help = "Examples:\n  hms-console knowledge query --tag recovery --related-to db-connection-lost --filter 'successful = true' --limit 5\n  hms-console knowledge query --component api --contains timeout --json\n  hms-console knowledge query --filter \"severity >= error\" --sort duration_ms:desc"
    )]
    Query(QueryArgs),
    /// Store one item (a note, a runbook step, a recovery record as JSON).
    #[command(
        after_help = "Examples:\n  hms-console knowledge add --component api --tag runbook --related-to oom 'raise the heap to 2G'\n  echo '{\"issue_type\":\"oom\",\"symptoms\":[\"Killed\"],\"severity\":\"error\"}' | hms-console knowledge add --component api --tag issue --tag pattern -"
    )]
    Add(AddArgs),
    /// How much the registry holds: items per component and tag, its file and its retention.
    Stats {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print everything, oldest first: a JSON array, or one JSON object per line with --jsonl
    /// (the format `import` reads).
    #[command(after_help = "Example:\n  hms-console knowledge export --jsonl > team.jsonl")]
    Export {
        /// One item per line instead of one JSON array.
        #[arg(long)]
        jsonl: bool,
    },
    /// Store the items of a JSON-lines file (what `export --jsonl` writes; blank lines and
    /// lines starting with # are skipped). Every line is checked first: one bad line is
    /// reported with its number and nothing is imported.
    #[command(after_help = "Example:\n  hms-console knowledge import assets/knowledge/demo.jsonl")]
    Import {
        /// The file to read.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(super) struct QueryArgs {
    /// Only items about this component.
    #[arg(long, short = 'c')]
    component: Option<String>,
    /// Only items with this tag (repeat: all must be present).
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    tags: Vec<String>,
    /// Only items whose symptom text contains TEXT (any case).
    #[arg(long, value_name = "TEXT")]
    contains: Option<String>,
    /// Only items about this issue type.
    #[arg(long, value_name = "TYPE")]
    related_to: Option<String>,
    #[arg(long, value_name = "EXPR", long_help = FILTER_HELP)]
    /// A filter expression, e.g. "successful = true and severity >= error".
    filter: Option<String>,
    /// The order: FIELD:asc or FIELD:desc (timestamp, severity, duration_ms, component,
    /// issue_type, strategy, successful, id).
    #[arg(long, value_name = "FIELD:ORDER", default_value = "timestamp:desc")]
    sort: String,
    /// At most N results.
    #[arg(long, short = 'n', default_value_t = 20)]
    limit: usize,
    /// Print a JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(super) struct AddArgs {
    /// The component it is about.
    #[arg(long, short = 'c')]
    component: String,
    /// A tag (repeat for more).
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    tags: Vec<String>,
    /// The issue type it relates to.
    #[arg(long, value_name = "TYPE")]
    related_to: Option<String>,
    /// The content (JSON or text); `-` reads it from standard input.
    content: String,
}

pub(super) async fn run(socket: &Path, command: KnowledgeCommand) -> Result<()> {
    match command {
        KnowledgeCommand::Query(args) => query(socket, args).await,
        KnowledgeCommand::Add(args) => add(socket, args).await,
        KnowledgeCommand::Stats { json } => stats(socket, json).await,
        KnowledgeCommand::Export { jsonl } => export(socket, jsonl).await,
        KnowledgeCommand::Import { file } => import(socket, &file).await,
    }
}

async fn query(socket: &Path, args: QueryArgs) -> Result<()> {
    let Some((field, order)) = args.sort.split_once(':') else {
        bail!(
            "--sort takes FIELD:asc or FIELD:desc, e.g. timestamp:desc, not '{}'",
            args.sort
        );
    };
    let mut q = KnowledgeQuery::new().sort(field, order).limit(args.limit);
    if let Some(c) = args.component {
        q = q.component(c);
    }
    for t in args.tags {
        q = q.tag(t);
    }
    if let Some(text) = args.contains {
        q = q.contains(text);
    }
    if let Some(t) = args.related_to {
        q = q.related_to(t);
    }
    if let Some(f) = args.filter {
        q = q.filter(f);
    }
    let results = super::connect(socket).await?.knowledge_query(q).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&results)?)?;
    } else if results.is_empty() {
        writeln!(out, "nothing found")?;
    } else {
        out.write_all(table(&results, SystemTime::now()).as_bytes())?;
    }
    Ok(())
}

/// One line per result: id, age, component, tags, summary.
fn table(results: &[KnowledgeResult], now: SystemTime) -> String {
    let rows: Vec<[String; 5]> = results
        .iter()
        .map(|r| {
            let age = match now.duration_since(r.timestamp) {
                Ok(d) => format!("{} ago", crate::text::duration(d)),
                Err(_) => "now".into(),
            };
            [
                r.id.to_string(),
                age,
                r.component.clone(),
                r.tags.join(","),
                crate::text::truncate(&r.summary(), 100),
            ]
        })
        .collect();
    let header = ["ID", "WHEN", "COMPONENT", "TAGS", "SUMMARY"].map(str::to_string);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter().zip(row) {
            text.push_str(&format!("{cell:<w$}  "));
        }
        text.push_str(&row[4]);
        text.push('\n');
    }
    text
}

async fn add(socket: &Path, args: AddArgs) -> Result<()> {
    let content = if args.content == "-" {
        std::io::read_to_string(std::io::stdin()).context("while reading the content from stdin")?
    } else {
        args.content
    };
    let mut item = KnowledgeItem::new()
        .component(args.component)
        .tags(args.tags)
        .content(content.trim_end())
        .source("cli");
    if let Some(t) = args.related_to {
        item = item.related_to(t);
    }
    let id = super::connect(socket)
        .await?
        .knowledge_contribute(item)
        .await?;
    outln!("stored as item {id}")?;
    Ok(())
}

async fn stats(socket: &Path, json: bool) -> Result<()> {
    let s = super::connect(socket).await?.knowledge_stats().await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&s)?)?;
        return Ok(());
    }
    let when = |t: Option<SystemTime>| {
        t.map_or("-".to_string(), |t| {
            humantime::format_rfc3339_seconds(t).to_string()
        })
    };
    let list = |pairs: &[(String, u64)]| {
        if pairs.is_empty() {
            "-".to_string()
        } else {
            pairs
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    outln!(
        "file:        {} (schema version {})",
        s.path,
        s.schema_version
    )?;
    outln!(
        "size:        {} (+ {} write-ahead log)",
        crate::text::bytes(s.db_bytes),
        crate::text::bytes(s.wal_bytes)
    )?;
    outln!("items:       {}", s.items)?;
    outln!("oldest:      {}", when(s.oldest))?;
    outln!("newest:      {}", when(s.newest))?;
    outln!("components:  {}", list(&s.components))?;
    outln!("tags:        {}", list(&s.tags))?;
    outln!(
        "retention:   at most {} items per component, none older than {} days",
        s.max_per_component,
        s.max_age_days
    )?;
    Ok(())
}

async fn export(socket: &Path, jsonl: bool) -> Result<()> {
    let mut client = super::connect(socket).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after = None;
    let mut first = true;
    if !jsonl {
        out.write_all(b"[")?;
    }
    loop {
        let (page, next) = client.knowledge_export_page(after, 1000).await?;
        for item in &page {
            let line = serde_json::to_string(item)?;
            if jsonl {
                writeln!(out, "{line}")?;
            } else {
                write!(out, "{}\n  {line}", if first { "" } else { "," })?;
            }
            first = false;
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if !jsonl {
        out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
    }
    out.flush()?;
    Ok(())
}

async fn import(socket: &Path, file: &Path) -> Result<()> {
    // Fail here, with the user's own path, before asking the core.
    std::fs::metadata(file).with_context(|| format!("while reading {}", file.display()))?;
    let count = super::connect(socket)
        .await?
        .knowledge_import_file(file)
        .await
        .with_context(|| format!("while importing {}", file.display()))?;
    outln!("imported {count} items from {}", file.display())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_table_lines_up_and_summarises() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let r = KnowledgeResult {
            id: 7,
            component: "api".into(),
            tags: vec!["runbook".into()],
            content: "raise   the heap\nto 2G".into(),
            related_to: Some("oom".into()),
            timestamp: now - Duration::from_secs(65),
            source: "cli".into(),
        };
        assert_eq!(
            table(&[r], now),
            "ID  WHEN       COMPONENT  TAGS     SUMMARY\n7   1m 5s ago  api        runbook  raise the heap to 2G\n"
        );
    }
}
