//! Transform plugins: SQL mode (`sql`), the declared output schema
//! (`output-schema`), and the streaming call loop that feeds Arrow batches
//! through `open`/`push`/`finish`, checking every output batch against the
//! declared schema before the caller sees it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{Array, RecordBatch};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{Schema, SchemaRef};
use wasmtime::Store;
use wasmtime::component::Component;

use super::call::{self, Call, HostState, bindings::transform as bindings};
use super::ipc::IpcStream;
use super::{Compiled, PluginInfo, PluginStats, Sandbox, SandboxError};

/// Most rows the host hands a transform in one `push`; bigger input batches
/// are sliced.
pub const MAX_PUSH_ROWS: usize = 65_536;
/// Approximate most bytes of Arrow data in one `push` (estimated from the
/// batch's memory size); bigger input batches are sliced.
pub const MAX_PUSH_BYTES: usize = 16 << 20;

/// A compiled and linked transform component. Every call gets a fresh store
/// and instance, so a trap never leaks into the next call. Cheap to clone.
#[derive(Clone)]
pub struct TransformPlugin {
    sandbox: Sandbox,
    name: String,
    pre: bindings::TransformPluginPre<HostState>,
    compiled: Compiled,
}

impl TransformPlugin {
    pub(super) fn new(
        sandbox: Sandbox,
        plugin: &str,
        component: Component,
        compiled: Compiled,
    ) -> Result<Self, SandboxError> {
        let instance_pre = call::instantiate_pre(&sandbox, plugin, &component)?;
        let pre = bindings::TransformPluginPre::new(instance_pre).map_err(|e| SandboxError::WrongWorld {
            plugin: plugin.to_owned(),
            world: "floe:plugin/transform-plugin",
            message: call::error_text(&e),
        })?;
        Ok(Self { sandbox, name: plugin.to_owned(), pre, compiled })
    }

    /// The plugin name errors and logs use.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the component came from the compile cache, and how long
    /// making it ready took.
    pub fn compiled(&self) -> Compiled {
        self.compiled
    }

    /// Asks the plugin about itself, in a throwaway instance.
    pub fn info(&self) -> Result<PluginInfo, SandboxError> {
        let call = self.call("plugin inspect");
        let (mut store, instance) = self.instantiate(&call)?;
        call.arm(&mut store);
        let info = instance.floe_plugin_meta().call_info(&mut store).map_err(|e| call.died(&store, e))?;
        Ok(call::plugin_info(info))
    }

    /// SQL mode: the DuckDB query the plugin builds over `inputs`
    /// (`layer.table` names), or `None` if it streams batches instead.
    pub fn sql(
        &self,
        step: &str,
        config: &BTreeMap<String, String>,
        inputs: &[String],
    ) -> Result<Option<String>, SandboxError> {
        self.sql_with_stats(step, config, inputs).map(|(query, _)| query)
    }

    /// `sql`, also returning what the plugin's calls cost.
    pub fn sql_with_stats(
        &self,
        step: &str,
        config: &BTreeMap<String, String>,
        inputs: &[String],
    ) -> Result<(Option<String>, PluginStats), SandboxError> {
        let call = self.call(step);
        let (mut store, instance) = self.instantiate(&call)?;
        call.arm(&mut store);
        let query = instance
            .floe_plugin_transform()
            .call_sql(&mut store, &call::config_pairs(config), inputs)
            .map_err(|e| call.died(&store, e))?
            .map_err(|e| call.plugin_error(e))?;
        Ok((query, store.data().stats()))
    }

    /// The schema the plugin declares for `input_schema` under `config`, in a
    /// throwaway instance. This is where a plugin rejects its config.
    pub fn output_schema(
        &self,
        step: &str,
        config: &BTreeMap<String, String>,
        input_schema: &Schema,
    ) -> Result<SchemaRef, SandboxError> {
        let call = self.call(step);
        let (mut store, instance) = self.instantiate(&call)?;
        declared_schema(&call, &mut store, &instance, config, input_schema)
    }

    /// Streams `batches` (all with `input_schema`) through the plugin and
    /// calls `on_batch` for each output batch, in order, once it has been
    /// checked against the declared output schema. Returns that schema.
    ///
    /// Input batches are re-sliced to at most `MAX_PUSH_ROWS` rows and about
    /// `MAX_PUSH_BYTES` bytes per `push`. The run has its own store; whatever
    /// happens, it is dropped at the end.
    pub fn transform(
        &self,
        step: &str,
        config: &BTreeMap<String, String>,
        input_schema: &SchemaRef,
        batches: &mut dyn Iterator<Item = RecordBatch>,
        on_batch: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
    ) -> Result<SchemaRef, SandboxError> {
        self.transform_with_stats(step, config, input_schema, batches, on_batch).map(|(schema, _)| schema)
    }

    /// `transform`, also returning what the plugin's calls cost.
    pub fn transform_with_stats(
        &self,
        step: &str,
        config: &BTreeMap<String, String>,
        input_schema: &SchemaRef,
        batches: &mut dyn Iterator<Item = RecordBatch>,
        on_batch: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
    ) -> Result<(SchemaRef, PluginStats), SandboxError> {
        let call = self.call(step);
        let started = Instant::now();
        let (mut store, instance) = self.instantiate(&call)?;
        let declared = declared_schema(&call, &mut store, &instance, config, input_schema)?;
        let transform = instance.floe_plugin_transform();

        call.arm(&mut store);
        let transformer = transform
            .call_open(&mut store, &call::config_pairs(config))
            .map_err(|e| call.died(&store, e))?
            .map_err(|e| call.plugin_error(e))?;

        let input_error = |message: String| SandboxError::Input {
            step: step.to_owned(),
            plugin: self.name.clone(),
            source: std::io::Error::other(message),
        };
        // The writer's buffer holds the schema message until the first push.
        let mut input = StreamWriter::try_new(Vec::new(), input_schema)
            .map_err(|e| input_error(format!("encoding the input: {e}")))?;
        let mut output = IpcStream::new(self.sandbox.limits().max_output_bytes);
        let mut checked = Checked::new(&call, declared.clone());
        let (mut rows_in, mut pushes, mut bytes_in, mut bytes_out, mut rows_out, mut batches_out) =
            (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        let mut deliver = |output: &mut IpcStream, fragment: Vec<u8>| -> Result<(), SandboxError> {
            call.check_output(fragment.len())?;
            bytes_out += fragment.len() as u64;
            for batch in output.push(fragment).map_err(|e| call.ipc_error(e))? {
                checked.batch(&batch)?;
                rows_out += batch.num_rows() as u64;
                batches_out += 1;
                on_batch(batch).map_err(|message| call.sink(message))?;
            }
            Ok(())
        };

        for batch in batches {
            if !same_fields(&batch.schema(), input_schema) {
                return Err(input_error(format!(
                    "an input batch has schema {}, not the declared input schema {}",
                    describe(&batch.schema()),
                    describe(input_schema)
                )));
            }
            for slice in slices(&batch) {
                input.write(&slice).map_err(|e| input_error(format!("encoding the input: {e}")))?;
                // One buffer for every push: cleared, not reallocated.
                let fragment = input.get_mut();
                rows_in += slice.num_rows() as u64;
                bytes_in += fragment.len() as u64;
                pushes += 1;
                call.arm(&mut store);
                let out = transform
                    .transformer()
                    .call_push(&mut store, transformer, fragment)
                    .map_err(|e| call.died(&store, e))?
                    .map_err(|e| call.plugin_error(e))?;
                fragment.clear();
                deliver(&mut output, out)?;
            }
        }
        if pushes == 0 {
            // No rows at all: the plugin still gets the schema.
            let fragment = std::mem::take(input.get_mut());
            call.arm(&mut store);
            let out = transform
                .transformer()
                .call_push(&mut store, transformer, &fragment)
                .map_err(|e| call.died(&store, e))?
                .map_err(|e| call.plugin_error(e))?;
            deliver(&mut output, out)?;
        }
        call.arm(&mut store);
        let out = transform
            .transformer()
            .call_finish(&mut store, transformer)
            .map_err(|e| call.died(&store, e))?
            .map_err(|e| call.plugin_error(e))?;
        deliver(&mut output, out)?;
        let schema = output.finish().map_err(|e| call.ipc_error(e))?;
        check_schema(&call, &declared, &schema)?;
        call.arm(&mut store);
        transformer.resource_drop(&mut store).map_err(|e| call.died(&store, e))?;

        // Counters for the caller's `plugin` span (observe/traces.rs), if any.
        let span = tracing::Span::current();
        span.record("rows_in", rows_in as i64)
            .record("pushes", pushes as i64)
            .record("bytes_in", bytes_in as i64)
            .record("bytes_out", bytes_out as i64);
        span.record("rows_out", rows_out as i64).record("batches_out", batches_out as i64);
        tracing::info!(step, plugin = %self.name, rows_in, pushes, bytes_in, bytes_out, rows_out, batches_out,
            elapsed_ms = started.elapsed().as_millis() as u64, "The plugin transformed its input.");
        Ok((declared, store.data().stats()))
    }

    fn call<'a>(&'a self, step: &'a str) -> Call<'a> {
        Call::new(step, &self.name, &self.sandbox)
    }

    fn instantiate(&self, call: &Call<'_>) -> Result<(Store<HostState>, bindings::TransformPlugin), SandboxError> {
        let mut store = call.store(self.pre.engine());
        let instance = self.pre.instantiate(&mut store).map_err(|e| call.died(&store, e))?;
        Ok((store, instance))
    }
}

/// Calls `output-schema` and decodes the schema-only stream it returns.
fn declared_schema(
    call: &Call<'_>,
    store: &mut Store<HostState>,
    instance: &bindings::TransformPlugin,
    config: &BTreeMap<String, String>,
    input_schema: &Schema,
) -> Result<SchemaRef, SandboxError> {
    let input = schema_only(input_schema).map_err(|message| SandboxError::Input {
        step: call.step.to_owned(),
        plugin: call.plugin.to_owned(),
        source: std::io::Error::other(message),
    })?;
    call.arm(store);
    let fragment = instance
        .floe_plugin_transform()
        .call_output_schema(&mut *store, &call::config_pairs(config), &input)
        .map_err(|e| call.died(store, e))?
        .map_err(|e| call.plugin_error(e))?;
    call.check_output(fragment.len())?;
    let mut stream = IpcStream::new(call.sandbox.limits().max_output_bytes);
    let batches = stream.push(fragment).map_err(|e| call.ipc_error(e))?;
    let schema = stream.finish().map_err(|e| call.ipc_error(e))?;
    if !batches.is_empty() {
        return Err(SandboxError::MalformedOutput {
            step: call.step.to_owned(),
            plugin: call.plugin.to_owned(),
            message: "`output-schema` returned record batches, not a schema-only stream".to_owned(),
        });
    }
    Ok(schema)
}

/// A schema-only IPC stream: the schema message and the end-of-stream marker.
fn schema_only(schema: &Schema) -> Result<Vec<u8>, String> {
    let mut writer =
        StreamWriter::try_new(Vec::new(), schema).map_err(|e| format!("encoding the input schema: {e}"))?;
    writer.finish().map_err(|e| format!("encoding the input schema: {e}"))?;
    writer.into_inner().map_err(|e| format!("encoding the input schema: {e}"))
}

/// Checks output batches against the declared schema; a batch whose schema
/// is the one already checked (the decoder shares it) costs a pointer test
/// plus a null count per non-nullable field.
struct Checked<'a> {
    call: &'a Call<'a>,
    declared: SchemaRef,
    checked: Option<SchemaRef>,
}

impl<'a> Checked<'a> {
    fn new(call: &'a Call<'a>, declared: SchemaRef) -> Self {
        Self { call, declared, checked: None }
    }

    fn batch(&mut self, batch: &RecordBatch) -> Result<(), SandboxError> {
        let schema = batch.schema();
        if !self.checked.as_ref().is_some_and(|s| Arc::ptr_eq(s, &schema)) {
            check_schema(self.call, &self.declared, &schema)?;
            self.checked = Some(schema);
        }
        for (field, column) in self.declared.fields().iter().zip(batch.columns()) {
            if !field.is_nullable() && column.null_count() > 0 {
                return Err(violation(
                    self.call,
                    format!(
                        "field `{}` is declared non-nullable, but a batch holds {} nulls in it",
                        field.name(),
                        column.null_count()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The output schema must have the declared fields, in order: the same names,
/// types and nullability (metadata is not compared).
fn check_schema(call: &Call<'_>, declared: &Schema, got: &Schema) -> Result<(), SandboxError> {
    if declared.fields().len() != got.fields().len() {
        return Err(violation(
            call,
            format!(
                "it declared {} fields {}, but sent {} fields {}",
                declared.fields().len(),
                describe(declared),
                got.fields().len(),
                describe(got)
            ),
        ));
    }
    for (i, (want, have)) in declared.fields().iter().zip(got.fields()).enumerate() {
        if want.name() != have.name()
            || want.data_type() != have.data_type()
            || want.is_nullable() != have.is_nullable()
        {
            return Err(violation(
                call,
                format!(
                    "field {} `{}`: declared `{}`, but sent `{}`",
                    i + 1,
                    want.name(),
                    describe_field(want),
                    describe_field(have)
                ),
            ));
        }
    }
    Ok(())
}

fn violation(call: &Call<'_>, message: String) -> SandboxError {
    SandboxError::OutputSchema { step: call.step.to_owned(), plugin: call.plugin.to_owned(), message }
}

fn same_fields(a: &SchemaRef, b: &SchemaRef) -> bool {
    Arc::ptr_eq(a, b) || a.fields() == b.fields()
}

fn describe_field(field: &arrow_schema::Field) -> String {
    format!("{}: {}{}", field.name(), field.data_type(), if field.is_nullable() { "" } else { " not null" })
}

fn describe(schema: &Schema) -> String {
    let fields: Vec<String> = schema.fields().iter().map(|f| describe_field(f)).collect();
    format!("({})", fields.join(", "))
}

/// Cuts `batch` into pieces of at most `MAX_PUSH_ROWS` rows and about
/// `MAX_PUSH_BYTES` bytes (zero-copy slices). Empty batches give nothing.
fn slices(batch: &RecordBatch) -> impl Iterator<Item = RecordBatch> + '_ {
    let rows = batch.num_rows();
    let bytes_per_row = batch.get_array_memory_size().div_ceil(rows.max(1)).max(1);
    let step = MAX_PUSH_ROWS.min((MAX_PUSH_BYTES / bytes_per_row).max(1));
    (0..rows).step_by(step).map(move |offset| batch.slice(offset, step.min(rows - offset)))
}

#[cfg(test)]
mod tests {
    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field};

    use super::*;

    #[test]
    fn slices_bound_rows() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let n = MAX_PUSH_ROWS * 2 + 5;
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..n as i64))]).unwrap();
        let sizes: Vec<usize> = slices(&batch).map(|b| b.num_rows()).collect();
        assert_eq!(sizes, [MAX_PUSH_ROWS, MAX_PUSH_ROWS, 5]);
        assert_eq!(slices(&batch.slice(0, 0)).count(), 0);
    }
}
