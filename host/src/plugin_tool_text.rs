//! How `floe-host plugin` prints what the library returns.

use std::fmt::Write;
use std::path::Path;

use floe_host::plugin_tool::TrialOutput;
use floe_host::sandbox::Inspection;

pub fn inspection(path: &Path, inspection: &Inspection) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "component {}", path.display());
    let _ = writeln!(out, "  sha256   {}", inspection.sha256);
    let _ = writeln!(out, "  compiled {}", compiled(inspection.compiled));
    match (&inspection.world, &inspection.info) {
        (Some(world), Some(info)) => {
            let _ = writeln!(out, "  world    {world}");
            let _ = writeln!(out, "  plugin   {} {} ({:?})", info.name, info.version, info.kind);
            let _ = writeln!(out, "  config   {}", info.config_schema.split_whitespace().collect::<Vec<_>>().join(" "));
            // `validate` checks steps' configs against it: say when it cannot.
            if let Err(why) = floe_host::plan::config_schema::parse(&info.config_schema) {
                let _ = writeln!(out, "  warning  the config schema cannot be used to check configs: {why}");
            }
        }
        _ => {
            let reason = inspection.link_error.as_ref().map_or("unknown".to_string(), ToString::to_string);
            let _ = writeln!(out, "  world    none: {reason}");
        }
    }
    let _ = writeln!(out, "  imports  {}", inspection.imports.join(", "));
    let _ = write!(out, "  exports  {}", inspection.exports.join(", "));
    out
}

/// `in 2.31 s`, or `from the cache in 12 ms`.
pub fn compiled(compiled: floe_host::sandbox::Compiled) -> String {
    let elapsed = compiled.elapsed;
    let time = if elapsed.as_millis() < 1000 {
        format!("{} ms", elapsed.as_millis())
    } else {
        format!("{:.2} s", elapsed.as_secs_f64())
    };
    if compiled.from_cache { format!("from the cache in {time}") } else { format!("in {time}") }
}

pub fn trial(output: &TrialOutput, limit: usize) -> String {
    let rows: usize = output.batches.iter().map(|b| b.num_rows()).sum();
    let mut out = format!("{} -> {rows} rows\n", output.world);
    if let Some(sql) = &output.sql {
        // The plugin's text: one escaped line, cut.
        let _ = writeln!(out, "sql: {}", floe_host::sandbox::text::quote(sql, 4096));
    }
    if rows == 0 || limit == 0 {
        let _ = writeln!(out, "schema: {}", output.schema);
    } else {
        let _ = writeln!(out, "{}", floe_host::preview::preview(&output.batches, limit));
    }
    out
}

pub fn write_parquet(path: &Path, output: &TrialOutput) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, output.schema.clone(), None).map_err(|e| e.to_string())?;
    for batch in &output.batches {
        writer.write(batch).map_err(|e| e.to_string())?;
    }
    writer.close().map(|_| ()).map_err(|e| e.to_string())
}
