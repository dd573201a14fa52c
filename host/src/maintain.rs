//! `floe-host maintain`: applies each table's maintenance policy (the
//! platform's `layers.<layer>.maintenance` and storage `retention`) to the
//! pipeline's tables, or to those `--table` names: expires old snapshots,
//! deletes the files only they referenced, and deletes orphan files (see
//! `lakehouse::maintain`). `--dry-run` reports the same figures and changes
//! nothing.

use std::collections::BTreeSet;

use crate::lakehouse::{Lakehouse, Maintained};
use crate::plan::{Plan, Step};
use crate::run::RunError;

/// Maintains the tables of `plan` named in `tables` (`layer.name`; all when
/// empty), one after another. A table that does not exist yet is skipped.
pub fn maintain(plan: &Plan, tables: &[String], dry_run: bool) -> Result<Vec<Maintained>, RunError> {
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
            let maintained = lakehouse
                .maintain(&step.catalog, &step.target, &step.maintenance, dry_run)
                .await
                .map_err(|source| RunError::Lakehouse { step: step.name.to_string(), source })?;
            match maintained {
                Some(maintained) => done.push(Maintained { table: name(step), ..maintained }),
                None => tracing::info!(table = %name(step), "The table does not exist yet: nothing to maintain."),
            }
        }
        Ok(done)
    })
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
