//! `floe-host maintain`: applies each table's maintenance policy (the
//! platform's `layers.<layer>.maintenance` and storage `retention`) to the
//! pipeline's tables, or to those `--table` names: compacts small files,
//! merges manifests, expires old snapshots, deletes the files only they
//! referenced, and deletes orphan files (see `lakehouse::maintain`).
//! `--dry-run` reports the same figures and changes nothing.
//!
//! It reports as `run` does: a `maintain` span with one `maintain_table`
//! span per table (traces), and the observers' maintenance events (lineage,
//! Dagster Pipes, `--summary-json`).

use std::collections::BTreeSet;

use tracing::Instrument;
use tracing::field::Empty;

use crate::lakehouse::{Lakehouse, Maintained};
use crate::observe::{Observers, RunInfo, traces};
use crate::plan::{Plan, Step};
use crate::run::RunError;

/// A fresh id for a maintenance (`maintain-` and 32 hex digits).
pub fn new_run_id() -> String {
    format!("maintain-{}", uuid::Uuid::new_v4().simple())
}

/// Maintains the tables of `plan` named in `tables` (`layer.name`; all when
/// empty), one after another, and tells `observers`. A table that does not
/// exist yet is skipped.
pub fn maintain(
    plan: &Plan,
    tables: &[String],
    dry_run: bool,
    run: &RunInfo,
    observers: &mut Observers,
) -> Result<Vec<Maintained>, RunError> {
    let span = tracing::info_span!(
        traces::MAINTAIN,
        run_id = %run.run_id,
        pipeline = %run.pipeline,
        dry_run,
        tables = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    );
    let result = span.in_scope(|| maintain_tables(plan, tables, dry_run, run, observers, &span));
    match &result {
        Ok(done) => {
            span.record("tables", done.len() as i64);
        }
        Err(error) => {
            traces::fail(&span, error);
        }
    }
    observers.maintenance_finished(run, result.as_deref());
    result
}

fn maintain_tables(
    plan: &Plan,
    tables: &[String],
    dry_run: bool,
    run: &RunInfo,
    observers: &mut Observers,
    span: &tracing::Span,
) -> Result<Vec<Maintained>, RunError> {
    let name = |s: &Step| format!("{}.{}", s.layer, s.name);
    let unknown: Vec<&String> = tables.iter().filter(|t| !plan.steps.iter().any(|s| &name(s) == *t)).collect();
    if !unknown.is_empty() {
        let available: Vec<String> = plan.steps.iter().map(name).collect();
        return Err(RunError::Config(format!(
            "no step of this pipeline produces {}; tables: {}",
            unknown.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", "),
            available.join(", ")
        )));
    }
    let steps: Vec<&Step> = plan.steps.iter().filter(|s| tables.is_empty() || tables.contains(&name(s))).collect();
    observers.maintenance_started(run, &steps, dry_run);
    let used: BTreeSet<(String, String)> = steps.iter().map(|s| (s.catalog.clone(), s.storage.clone())).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Setup(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let lakehouse = Lakehouse::open(&plan.catalogs, &plan.storage, used).await.map_err(RunError::opening)?;
        let mut done = Vec::new();
        for step in steps {
            tracing::info!(table = %name(step), dry_run, "Maintaining the table.");
            let table_span = tracing::info_span!(
                parent: span,
                traces::MAINTAIN_TABLE,
                step = %step.name,
                table = %step.target,
                snapshots = Empty,
                expired = Empty,
                files_deleted = Empty,
                bytes_deleted = Empty,
                orphans_deleted = Empty,
                files_compacted = Empty,
                files_written = Empty,
                manifests_before = Empty,
                manifests_after = Empty,
                otel.status_code = Empty,
                otel.status_description = Empty,
            );
            let maintained = lakehouse
                .maintain(&step.catalog, &step.target, &step.maintenance, dry_run)
                .instrument(table_span.clone())
                .await
                .map_err(|source| RunError::Lakehouse { step: step.name.to_string(), source });
            match maintained {
                Ok(Some(maintained)) => {
                    let maintained = Maintained { table: name(step), ..maintained };
                    record(&table_span, &maintained);
                    observers.table_maintained(run, step, &maintained);
                    done.push(maintained);
                }
                Ok(None) => tracing::info!(table = %name(step), "The table does not exist yet: nothing to maintain."),
                Err(error) => {
                    traces::fail(&table_span, &error);
                    return Err(error);
                }
            }
        }
        Ok(done)
    })
}

/// The counts of `maintained` on its span (as `i64`: see `traces`).
fn record(span: &tracing::Span, m: &Maintained) {
    let n = |v: usize| v as i64;
    span.record("snapshots", n(m.snapshots))
        .record("expired", n(m.expired.len()))
        .record("files_deleted", n(m.files_deleted))
        .record("bytes_deleted", m.bytes_deleted as i64)
        .record("orphans_deleted", n(m.orphans_deleted))
        .record("files_compacted", n(m.compaction.files_replaced))
        .record("files_written", n(m.compaction.files_written))
        .record("manifests_before", n(m.manifests_before))
        .record("manifests_after", n(m.manifests_after));
}

/// The report: one line per table.
pub fn render(maintained: &[Maintained], dry_run: bool) -> String {
    let mut out = String::new();
    if dry_run {
        out.push_str("dry run: nothing was changed; this is what `maintain` would do\n");
    }
    out.push_str(&format!(
        "{:<32} {:>9} {:>8} {:>20} {:>20} {:>6} {:>24} {:>9}\n",
        "table", "snapshots", "expired", "files deleted", "orphans deleted", "young", "compacted", "manifests"
    ));
    for m in maintained {
        let c = &m.compaction;
        let compacted = match (c.files_replaced, dry_run) {
            (0, _) => "-".to_string(),
            (n, true) => format!("{n} ({}) → ?", size(c.bytes_replaced)),
            (n, false) if c.skipped.is_some() => format!("{n} skipped"),
            (n, false) => format!("{n} ({}) → {}", size(c.bytes_replaced), c.files_written),
        };
        let manifests = match (m.manifests_before, m.manifests_after) {
            (before, after) if before == after => before.to_string(),
            (before, after) => format!("{before} → {after}"),
        };
        out.push_str(&format!(
            "{:<32} {:>9} {:>8} {:>20} {:>20} {:>6} {:>24} {:>9}\n",
            m.table,
            m.snapshots,
            m.expired.len(),
            format!("{} ({})", m.files_deleted, size(m.bytes_deleted)),
            format!("{} ({})", m.orphans_deleted, size(m.orphan_bytes)),
            m.orphans_young,
            compacted,
            manifests,
        ));
    }
    for m in maintained {
        if let Some(reason) = &m.compaction.skipped {
            out.push_str(&format!("{}: not compacted: {reason}\n", m.table));
        }
    }
    out
}

fn size(bytes: u64) -> String {
    match bytes {
        ..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}
