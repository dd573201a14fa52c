//! Turns a parsed [`Project`] into a [`Plan`], collecting every problem:
//! unknown profiles and plugins, missing files, SQL that reads a table no step
//! produces, cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::model::data_tests::{DataTest, TestKind};
use super::model::{Model, ModelSettings, Models};
use super::order::topological;
use super::partition;
use super::plugin_config::ConfigSite;
use super::source::SourceRoots;
use super::sql_refs::find_refs;
use super::{
    Action, CatalogSpec, Guard, Input, MaintenancePolicy, Plan, PluginSpec, RestAuth, RestSpec, S3Keys, Step,
    StorageSpec, TableRef,
};
use crate::config::{
    CatalogCredentials, CatalogProfile, ClientId, ComputeProfile, ConfigError, ConfigErrors, Ident, Project, Secret,
    SecretSource, StorageCredentials, StorageProfile, TransformKind, WriteMode,
};
use crate::sandbox::sha256_hex;

/// Resolves and checks everything, secrets included; returns every error found.
pub fn build(project: &Project, secrets: &SecretSource) -> Result<Plan, ConfigErrors> {
    let mut checker = Checker { project, secrets, resolved: BTreeMap::new(), errors: ConfigErrors::default() };
    let plan = checker.build();
    checker.errors.into_result(()).map(|()| plan.expect("a plan exists when there are no errors"))
}

struct Checker<'a> {
    project: &'a Project,
    secrets: &'a SecretSource,
    /// Resolved secrets by the name they were referenced with.
    resolved: BTreeMap<String, Secret>,
    errors: ConfigErrors,
}

impl Checker<'_> {
    fn floe_error(&mut self, key: String, message: String, help: Option<String>) {
        let position = self.project.locate_in_floe(&key);
        let mut error = ConfigError::new(&self.project.floe_path, key, message).at(position);
        error.help = help;
        self.errors.push(error);
    }

    fn platform_error(&mut self, key: String, message: String, help: Option<String>) {
        let position = self.project.locate_in_platform(&key);
        let mut error = ConfigError::new(self.project.platform_display(), key, message).at(position);
        error.help = help;
        self.errors.push(error);
    }

    /// Models may read files under `allowed_directories`, but never the
    /// host's own state (catalog, compile cache) or the secrets: a directory
    /// that holds either, or lies inside either, is refused.
    fn check_allowed_directories(&mut self, compute: &str, directories: &[String]) {
        let protected = [
            ("the state directory", self.project.state_dir.clone()),
            ("the secrets directory", self.secrets.secrets_dir.clone()),
        ];
        for (i, dir) in directories.iter().enumerate() {
            let key = format!("compute.{compute}.properties.allowed_directories[{i}]");
            let path = std::path::Path::new(dir);
            if !path.is_absolute() {
                self.platform_error(
                    key,
                    format!("`{dir}` is not an absolute path"),
                    Some("write for example `/data/reference`".into()),
                );
                continue;
            }
            // Lexically, `..` resolved, as DuckDB compares paths.
            let clean = |p: &std::path::Path| -> std::path::PathBuf {
                let mut out = std::path::PathBuf::new();
                for part in p.components() {
                    match part {
                        std::path::Component::ParentDir => {
                            out.pop();
                        }
                        std::path::Component::CurDir => {}
                        other => out.push(other),
                    }
                }
                out
            };
            for (what, protected) in &protected {
                let (a, b) = (clean(path), clean(&std::path::absolute(protected).unwrap_or(protected.clone())));
                if a.starts_with(&b) || b.starts_with(&a) {
                    self.platform_error(
                        key.clone(),
                        format!("`{dir}` overlaps {what} ({}), which SQL must never read", protected.display()),
                        Some("allow only the folders of reference data that models read".into()),
                    );
                }
            }
        }
    }

    fn build(&mut self) -> Option<Plan> {
        let project = self.project;
        let floe = &project.floe;
        let platform = &project.platform;

        self.resolve_secrets();
        self.check_profile("catalog", &floe.catalog, platform.catalogs.keys());
        self.check_profile("storage", &floe.storage, platform.storage.keys());
        self.check_profile("compute", &floe.compute, platform.compute.keys());
        for (layer, profile) in &platform.layers {
            if !platform.catalogs.contains_key(&profile.catalog_ref) {
                self.platform_error(
                    format!("layers.{layer}.catalog_ref"),
                    format!("unknown catalog `{}`", profile.catalog_ref),
                    Some(available("catalogs", platform.catalogs.keys())),
                );
            }
            if !platform.storage.contains_key(&profile.storage_ref) {
                self.platform_error(
                    format!("layers.{layer}.storage_ref"),
                    format!("unknown storage `{}`", profile.storage_ref),
                    Some(available("storage", platform.storage.keys())),
                );
            }
        }

        // The dbt project's models: those floe.yaml lists, and with
        // `dbt_project:` every other one too.
        let mut models = match Models::open(project) {
            Ok(models) => Some(models),
            Err(errors) => {
                self.errors.0.extend(errors);
                None
            }
        };
        let discovered = match models.as_ref().map(|m| m.discover(&floe.transforms)) {
            Some(Ok(found)) => found,
            Some(Err(errors)) => {
                self.errors.0.extend(errors);
                Vec::new()
            }
            None => Vec::new(),
        };
        let all_transforms: Vec<crate::config::Transform> = floe.transforms.iter().cloned().chain(discovered).collect();
        let transforms = all_transforms.as_slice();

        if !platform.layers.is_empty() {
            for (i, transform) in transforms.iter().enumerate() {
                if !platform.layers.contains_key(&transform.layer) {
                    let names: Vec<String> = platform.layers.keys().map(ToString::to_string).collect();
                    self.floe_error(
                        format!("transforms[{i}].layer"),
                        format!("unknown layer `{}`", transform.layer),
                        Some(format!(
                            "the platform file defines the layers {}; use one of them or ask the platform team to add it",
                            names.join(", ")
                        )),
                    );
                }
            }
        }

        let plugins = self.plugins();
        let source_roots = self.source_roots();
        let mut seen = BTreeMap::new();
        for (i, transform) in transforms.iter().enumerate() {
            if let Some(first) = seen.insert(transform.name.clone(), i) {
                self.floe_error(
                    format!("transforms[{i}].name"),
                    format!("step `{}` is defined twice (first at `transforms[{first}]`)", transform.name),
                    Some("step names are table names and must be unique".into()),
                );
            }
        }

        // Every layer a SQL model may refer to by name.
        let layers: BTreeSet<&str> =
            transforms.iter().map(|t| t.layer.as_str()).chain(platform.layers.keys().map(Ident::as_str)).collect();
        let layer_names: Vec<&str> = layers.into_iter().collect();
        let produced: BTreeMap<(String, String), usize> =
            transforms.iter().enumerate().map(|(i, t)| ((t.layer.to_string(), t.name.to_string()), i)).collect();
        if let Some(models) = &mut models {
            models.set_pipeline(transforms, &layer_names);
        }
        let mut warnings: Vec<String> = models.iter().flat_map(|m| m.warnings().to_vec()).collect();
        // Config keys of models that floe-host ignores: one warning per key.
        let mut ignored: BTreeMap<String, Vec<String>> = BTreeMap::new();

        let mut steps = Vec::new();
        let mut deps = Vec::new();
        for (i, transform) in transforms.iter().enumerate() {
            let key = |field: &str| format!("transforms[{i}].{field}");
            // A SQL step's model is rendered first: its config may set the
            // step's mode, keys, partitioning and tags.
            let model = match (&models, transform.kind) {
                (Some(models), TransformKind::Sql) => self.model(i, transform, models),
                _ => None,
            };
            let transform = &match &model {
                Some(model) => {
                    for key in &model.settings.ignored {
                        ignored.entry(key.clone()).or_default().push(transform.name.to_string());
                    }
                    self.apply_model_settings(i, transform, &model.settings)
                }
                None => transform.clone(),
            };
            let (catalog, storage, namespace) = self.layer_target(&transform.layer);
            for problem in partition::check_transform(transform) {
                self.floe_error(key(&problem.key), problem.message, Some(problem.help));
            }
            let mut step_deps = Vec::new();
            let action = match transform.kind {
                TransformKind::Ingest => {
                    for (field, present) in [("sql", transform.sql.is_some()), ("inputs", !transform.inputs.is_empty())]
                    {
                        if present {
                            self.floe_error(
                                key(field),
                                format!("`{field}` does not apply to an `ingest` step"),
                                Some("remove it: an `ingest` step reads its `source` file".into()),
                            );
                        }
                    }
                    let plugin = self.step_plugin(i, transform.plugin.as_deref(), &plugins, "ingest", "csv-ingest");
                    let source = match &transform.source {
                        None => {
                            self.floe_error(
                                key("kind"),
                                "an `ingest` step needs `source`".into(),
                                Some("add for example `source: data/orders.csv`, relative to floe.yaml".into()),
                            );
                            None
                        }
                        Some(source) => {
                            let path = project.root.join(source);
                            match partition::check_source_template(&project.root, source) {
                                Ok(true) => Some((path, source.display().to_string())),
                                Ok(false) => match source_roots.check(&path) {
                                    Ok(()) => Some((path, source.display().to_string())),
                                    Err(problem) => {
                                        let help = problem.help().to_owned();
                                        self.floe_error(key("source"), problem.to_string(), Some(help));
                                        None
                                    }
                                },
                                Err((message, help)) => {
                                    self.floe_error(key("source"), message, Some(help));
                                    None
                                }
                            }
                        }
                    };
                    let config = self.plugin_config(i, &transform.config);
                    match (plugin, source) {
                        (Some(plugin), Some((source, source_display))) => {
                            Some(Action::Ingest { plugin, source, source_display, config })
                        }
                        _ => None,
                    }
                }
                TransformKind::Wasm => {
                    for (field, present) in [("sql", transform.sql.is_some()), ("source", transform.source.is_some())] {
                        if present {
                            self.floe_error(
                                key(field),
                                format!("`{field}` does not apply to a `wasm` step"),
                                Some("remove it: a `wasm` step reads its `inputs`".into()),
                            );
                        }
                    }
                    if transform.inputs.is_empty() {
                        self.floe_error(
                            key("kind"),
                            "a `wasm` step needs `inputs`".into(),
                            Some("add for example `inputs: [silver.stg_orders]`".into()),
                        );
                    }
                    for (n, input) in transform.inputs.iter().enumerate() {
                        let found = input
                            .split_once('.')
                            .and_then(|(layer, table)| produced.get(&(layer.to_string(), table.to_string())));
                        match found {
                            Some(&dep) if dep == i => self.floe_error(
                                format!("transforms[{i}].inputs[{n}]"),
                                format!("step `{}` reads its own table `{input}`", transform.name),
                                None,
                            ),
                            Some(&dep) => step_deps.push(dep),
                            None => {
                                let layer = input.split_once('.').map_or(input.as_str(), |(l, _)| l);
                                self.floe_error(
                                    format!("transforms[{i}].inputs[{n}]"),
                                    format!(
                                        "input `{input}` is not a table that a step produces (write `<layer>.<name>`)"
                                    ),
                                    Some(available_in_layer(layer, transforms)),
                                )
                            }
                        }
                    }
                    let plugin = self.step_plugin(i, transform.plugin.as_deref(), &plugins, "wasm", "pii-mask");
                    let config = self.plugin_config(i, &transform.config);
                    plugin.map(|plugin| Action::Wasm { plugin, config })
                }
                TransformKind::Sql => {
                    for (field, present) in [
                        ("inputs", !transform.inputs.is_empty()),
                        ("plugin", transform.plugin.is_some()),
                        ("source", transform.source.is_some()),
                        ("config", !transform.config.is_empty()),
                    ] {
                        if present {
                            self.floe_error(
                                key(field),
                                format!("`{field}` does not apply to a `sql` step"),
                                Some("remove it: a `sql` step reads the tables its SQL names".into()),
                            );
                        }
                    }
                    match model {
                        None => None,
                        Some(model) => {
                            // Tables the model names, in the SQL for a new table and
                            // in the incremental one (which may read its own).
                            let incremental_refs =
                                model.incremental.as_deref().map(|q| find_refs(q, &layer_names)).unwrap_or_default();
                            let own = |found: &super::sql_refs::SqlRef| {
                                found.schema == transform.layer.as_str() && found.table == transform.name.as_str()
                            };
                            let refs = find_refs(&model.query, &layer_names)
                                .into_iter()
                                .chain(incremental_refs.into_iter().filter(|found| !own(found)));
                            for found in refs {
                                let path = &model.file;
                                match produced.get(&(found.schema.clone(), found.table.clone())) {
                                    Some(&dep) if dep == i => self.errors.push(
                                        ConfigError::new(
                                            path,
                                            "",
                                            format!(
                                                "step `{}` reads its own table `{}.{}`",
                                                transform.name, found.schema, found.table
                                            ),
                                        )
                                        .at(Some((found.line, found.column)))
                                        .help(
                                            "only an incremental model may, as `{{ this }}` inside \
                                             `{% if is_incremental() %}`",
                                        ),
                                    ),
                                    Some(&dep) => step_deps.push(dep),
                                    None => self.errors.push(
                                        ConfigError::new(
                                            path,
                                            "",
                                            format!(
                                                "references `{}.{}`, which no step produces (SQL of `transforms[{i}].sql` in {})",
                                                found.schema,
                                                found.table,
                                                project.floe_path.display()
                                            ),
                                        )
                                        .at(Some((found.line, found.column)))
                                        .help(available_in_layer(&found.schema, transforms)),
                                    ),
                                }
                            }
                            Some(Action::Sql {
                                file: model.file,
                                query: model.query,
                                incremental: model.incremental,
                                source_map: std::sync::Arc::new(model.source_map),
                            })
                        }
                    }
                }
            };
            for problem in super::write::check(transform) {
                self.floe_error(key(&problem.field), problem.message, Some(problem.help));
            }
            // First mention wins: a `wasm` step's inputs keep the user's order.
            let mut seen_deps = BTreeSet::new();
            step_deps.retain(|d| seen_deps.insert(*d));
            deps.push(step_deps);
            // A REST catalog places tables itself (under its warehouse, which is
            // also where its credentials are scoped); the SQL catalog places them
            // on the layer's storage.
            let location = match (platform.catalogs.get(&catalog), platform.storage.get(&storage)) {
                (Some(CatalogProfile::Sql(_)), Some(profile)) => {
                    Some(table_location(profile, &namespace, &transform.name))
                }
                _ => None,
            };
            let guard = self.guard(i, transform);
            let maintenance = self.maintenance(&transform.layer, &storage);
            steps.push(action.map(|action| Step {
                name: transform.name.clone(),
                layer: transform.layer.clone(),
                target: TableRef { namespace, name: transform.name.clone() },
                catalog,
                storage,
                location,
                mode: transform.mode,
                partition_by: transform.partition_by.clone(),
                partition: None,
                merge_keys: transform.merge_keys.clone(),
                schema_evolution: transform.schema_evolution,
                guard,
                plugin_config:
                    (!matches!(action, Action::Sql { .. })).then(|| ConfigSite::new(project, i, &transform.config)),
                action,
                inputs: Vec::new(),
                tags: transform.tags.clone(),
                maintenance,
                data_tests: self.resolve_tests(
                    models.as_ref().map(|m| m.tests_of(transform.name.as_str())).unwrap_or_default(),
                    transforms,
                ),
            }));
        }

        let order = match topological(steps.len(), &deps) {
            Ok(order) => order,
            Err(cycle) => {
                let names: Vec<String> = cycle.iter().map(|&n| transforms[n].name.to_string()).collect();
                self.floe_error(
                    format!("transforms[{}]", cycle[0]),
                    format!("steps depend on each other in a cycle: {} -> {}", names.join(" -> "), names[0]),
                    Some("a SQL model may only read tables of steps that do not read it".into()),
                );
                return None;
            }
        };

        if let Some(models) = &models {
            self.attach_singular_tests(models, transforms, &layer_names, &produced, &order, &mut steps, &mut warnings);
        }

        let (compute, concurrent_steps) = match platform.compute.get(&floe.compute) {
            Some(ComputeProfile::Duckdb { properties, concurrent_steps }) => {
                (properties.clone(), concurrent_steps.map_or_else(super::default_concurrent_steps, |n| n.0 as usize))
            }
            None => return None,
        };
        self.check_allowed_directories(&floe.compute, &compute.allowed_directories);
        for missing in super::features::missing(platform) {
            self.platform_error(
                missing.key,
                format!(
                    "needs {}, and this floe-host was built without it (Cargo feature `{}`; `scripts/demo.sh` builds a \
                     smaller floe-host with the embedded catalog and local storage only)",
                    missing.needs, missing.feature
                ),
                Some("use a full build: `cargo build -p floe-host` (default features), or the release image".into()),
            );
        }
        let catalogs =
            platform.catalogs.iter().map(|(name, profile)| (name.clone(), self.catalog_spec(profile))).collect();
        let storage =
            platform.storage.iter().map(|(name, profile)| (name.clone(), self.storage_spec(profile))).collect();
        let limits = sandbox_limits(&platform.plugins);

        for (key, steps) in ignored {
            warnings.push(format!(
                "config key `{key}` of the models of {} is ignored by floe-host",
                steps.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        if !self.errors.is_empty() {
            return None;
        }
        let mut resolved: Vec<Option<Step>> = steps;
        let mut ordered = Vec::with_capacity(order.len());
        for &n in &order {
            let mut step = resolved[n].take()?;
            step.inputs = deps[n]
                .iter()
                .map(|&d| {
                    let producer = &transforms[d];
                    let (catalog, _, namespace) = self.layer_target(&producer.layer);
                    Input {
                        layer: producer.layer.clone(),
                        table: TableRef { namespace, name: producer.name.clone() },
                        catalog,
                    }
                })
                .collect();
            ordered.push(step);
        }
        Some(Plan {
            pipeline: floe.name.clone(),
            steps: ordered,
            catalogs,
            storage,
            compute,
            concurrent_steps,
            limits,
            observability: platform.observability.clone(),
            state_dir: project.state_dir.clone(),
            sources: source_roots,
            warnings,
        })
    }

    /// The data tests of a step, each `relationships` test with the table of
    /// the step it names; naming no step is an error against its schema file.
    fn resolve_tests(&mut self, mut tests: Vec<DataTest>, transforms: &[crate::config::Transform]) -> Vec<DataTest> {
        for test in &mut tests {
            let name = test.name();
            let file = test.file.clone();
            if let TestKind::Relationships { to, table, .. } = &mut test.kind {
                match transforms.iter().find(|t| t.name.as_str() == to.as_str()) {
                    Some(step) => {
                        let (catalog, _, namespace) = self.layer_target(&step.layer);
                        *table = Some((catalog, TableRef { namespace, name: step.name.clone() }));
                    }
                    None => self.errors.push(
                        ConfigError::new(
                            &file,
                            "",
                            format!("the data test `{name}` refers to `{to}`, which is no step"),
                        )
                        .help(format!("write `to: ref('<step>')` with one of: {}", step_names(transforms))),
                    ),
                }
            }
        }
        tests
    }

    /// Renders each singular test of the dbt project and gives it to the
    /// last step, in run order, of the tables it names: when that step has
    /// computed, every table the test reads is known. The other tables are
    /// the test's inputs. A test that names no step's table is an error.
    #[allow(clippy::too_many_arguments)]
    fn attach_singular_tests(
        &mut self,
        models: &Models,
        transforms: &[crate::config::Transform],
        layer_names: &[&str],
        produced: &BTreeMap<(String, String), usize>,
        order: &[usize],
        steps: &mut [Option<Step>],
        warnings: &mut Vec<String>,
    ) {
        for file in models.singular_test_files() {
            let (query, source_map, severity) = match models.render_test(file, warnings) {
                Ok(rendered) => rendered,
                Err(errors) => {
                    self.errors.0.extend(errors);
                    continue;
                }
            };
            let mut read = Vec::new();
            for found in find_refs(&query, layer_names) {
                match produced.get(&(found.schema.clone(), found.table.clone())) {
                    Some(&step) => read.push(step),
                    None => {
                        let (line, column) =
                            source_map.locate(super::model::offset_of(&query, found.line, found.column));
                        self.errors.push(
                            ConfigError::new(
                                file,
                                "",
                                format!("references `{}.{}`, which no step produces", found.schema, found.table),
                            )
                            .at(Some((line, column)))
                            .help(available_in_layer(&found.schema, transforms)),
                        );
                    }
                }
            }
            let Some(&owner) = order.iter().rev().find(|n| read.contains(n)) else {
                if self.errors.0.iter().all(|e| e.file != *file) {
                    self.errors.push(
                        ConfigError::new(file, "", "the singular test reads no table of this pipeline")
                            .help("refer to the model it tests with `{{ ref('<model>') }}`"),
                    );
                }
                continue;
            };
            let mut inputs: Vec<Input> = Vec::new();
            for &n in read.iter().filter(|&&n| n != owner) {
                let producer = &transforms[n];
                let (catalog, _, namespace) = self.layer_target(&producer.layer);
                let input = Input {
                    layer: producer.layer.clone(),
                    table: TableRef { namespace, name: producer.name.clone() },
                    catalog,
                };
                if !inputs.contains(&input) {
                    inputs.push(input);
                }
            }
            let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("test").to_string();
            if let Some(step) = &mut steps[owner] {
                step.data_tests.push(DataTest {
                    column: String::new(),
                    kind: TestKind::Singular { name, query, inputs },
                    severity,
                    file: file.clone(),
                });
            }
        }
    }

    /// Finds, reads and renders a SQL step's model; `None` after an error.
    fn model(&mut self, i: usize, transform: &crate::config::Transform, models: &Models) -> Option<Model> {
        let key = format!("transforms[{i}].sql");
        let file = match models.model_file(&self.project.root, transform.name.as_str(), transform.sql.as_deref()) {
            Ok(file) => file,
            Err((message, help)) => {
                let key = if transform.sql.is_some() { key } else { format!("transforms[{i}].name") };
                self.floe_error(key, message, Some(help));
                return None;
            }
        };
        let source = match std::fs::read_to_string(&file) {
            Ok(source) => source,
            Err(error) => {
                self.floe_error(
                    key,
                    format!("cannot read SQL file `{}`: {error}", file.display()),
                    Some("paths are relative to the directory of floe.yaml".into()),
                );
                return None;
            }
        };
        match models.render(transform.name.as_str(), transform.layer.as_str(), &file, &source) {
            Ok(model) => Some(model),
            Err(errors) => {
                self.errors.0.extend(errors);
                None
            }
        }
    }

    /// The step as its model's config makes it: mode, merge keys,
    /// partitioning, schema evolution and tags from the config where
    /// floe.yaml does not set them; a contradiction is an error.
    fn apply_model_settings(
        &mut self,
        i: usize,
        transform: &crate::config::Transform,
        settings: &ModelSettings,
    ) -> crate::config::Transform {
        let mut step = transform.clone();
        let key = |field: &str| format!("transforms[{i}].{field}");
        let conflict = |field: &str, floe: String, model: String| {
            (
                key(field),
                format!("floe.yaml sets `{field}: {floe}`, and the model's config says {model}"),
                "keep one of them: the model's config, or the step in floe.yaml".to_string(),
            )
        };
        let mut problems = Vec::new();
        if let Some(mode) = settings.mode {
            if transform.mode != WriteMode::Overwrite && transform.mode != mode {
                problems.push(conflict("mode", transform.mode.as_str().into(), format!("`{}`", mode.as_str())));
            } else {
                step.mode = mode;
            }
        }
        if let Some(keys) = &settings.merge_keys {
            if !transform.merge_keys.is_empty() && &transform.merge_keys != keys {
                problems.push(conflict("merge_keys", transform.merge_keys.join(", "), format!("unique_key {keys:?}")));
            } else {
                step.merge_keys = keys.clone();
            }
        }
        if let Some(fields) = &settings.partition_by {
            let parsed: Result<Vec<_>, String> =
                fields.iter().map(|f| crate::config::PartitionField::try_from(f.clone())).collect();
            match parsed {
                Err(message) => problems.push((
                    key("sql"),
                    format!("the model's config(partition_by=...): {message}"),
                    "write a column, or `day(column)`, `month(column)` or `year(column)`".into(),
                )),
                Ok(parsed) if !transform.partition_by.is_empty() && transform.partition_by != parsed => {
                    problems.push(conflict(
                        "partition_by",
                        format!("{:?}", transform.partition_by),
                        format!("partition_by {fields:?}"),
                    ))
                }
                Ok(parsed) => step.partition_by = parsed,
            }
        }
        if let Some(schema) = &settings.schema
            && schema != transform.layer.as_str()
        {
            problems.push((
                key("layer"),
                format!("the step's layer is `{}`, and its model's config says schema='{schema}'", transform.layer),
                format!("set `layer: {schema}` on the step in floe.yaml (the plan places tables before it renders models), or drop schema from the config"),
            ));
        }
        if let Some(evolution) = settings.schema_evolution {
            step.schema_evolution = evolution;
        }
        for tag in &settings.tags {
            if !step.tags.contains(tag) {
                step.tags.push(tag.clone());
            }
        }
        for (key, message, help) in problems {
            self.floe_error(key, message, Some(help));
        }
        step
    }

    /// The step's guard: `allow_empty` only on an ingest, `max_shrink` a
    /// fraction from 0 to 1.
    fn guard(&mut self, i: usize, transform: &crate::config::Transform) -> Guard {
        let key = |field: &str| format!("transforms[{i}].{field}");
        if transform.allow_empty && transform.kind != TransformKind::Ingest {
            self.floe_error(
                key("allow_empty"),
                "`allow_empty` applies to `ingest` steps only".into(),
                Some("remove it; `max_shrink` bounds how much any step may remove".into()),
            );
        }
        let max_shrink = transform.max_shrink.unwrap_or(Guard::DEFAULT_MAX_SHRINK);
        if !(0.0..=1.0).contains(&max_shrink) {
            self.floe_error(
                key("max_shrink"),
                format!("`max_shrink` is {max_shrink}, not a fraction from 0 to 1"),
                Some("for example `max_shrink: 0.9` lets the output lose up to 90% of the rows it replaces; `1` turns the check off".into()),
            );
        }
        Guard { allow_empty: transform.allow_empty, max_shrink }
    }

    /// The project directory and the platform's `sources.allowed_roots`,
    /// minus the secrets and state directories; a root that is not absolute
    /// or lies inside either protected directory is refused.
    fn source_roots(&mut self) -> SourceRoots {
        let protected = vec![
            ("the secrets directory".to_owned(), self.secrets.secrets_dir.clone()),
            ("the state directory".to_owned(), self.project.state_dir.clone()),
        ];
        let roots = SourceRoots::new(&self.project.root, &self.project.platform.sources.allowed_roots, protected);
        for (i, root) in self.project.platform.sources.allowed_roots.iter().enumerate() {
            let key = format!("sources.allowed_roots[{i}]");
            if !root.is_absolute() {
                let message = format!("`{}` is not an absolute path", root.display());
                self.platform_error(key, message, Some("write for example `/data/landing`".into()));
                continue;
            }
            let allowed = &roots.allowed[i + 1];
            // A root that holds a protected directory is fine: that directory
            // stays refused. One inside it allows nothing.
            if let Some((what, dir)) = roots.protected.iter().find(|(_, dir)| allowed.starts_with(dir)) {
                let message =
                    format!("`{}` is inside {what} ({}), which no step may read", root.display(), dir.display());
                self.platform_error(key, message, Some("allow only the folders that hold source data".into()));
            }
        }
        roots
    }

    fn check_profile<'k>(&mut self, kind: &str, name: &str, known: impl Iterator<Item = &'k String> + Clone) {
        if !known.clone().any(|k| k == name) {
            let section = if kind == "catalog" { "catalogs" } else { kind };
            let help = match &self.project.platform_path {
                Some(path) => format!("{}; define `{section}.{name}` in {}", available(section, known), path.display()),
                None => format!(
                    "no platform file is in use, and the embedded default only defines `default`; pass --platform \
                     (or set FLOE_PLATFORM_FILE or FLOE_PLATFORM_ENV) with a file that defines `{section}.{name}`"
                ),
            };
            self.floe_error(kind.to_string(), format!("unknown {kind} profile `{name}`"), Some(help));
        }
    }

    /// The plugin a step names, checked against `plugins`.
    fn step_plugin(
        &mut self,
        i: usize,
        name: Option<&str>,
        plugins: &BTreeMap<String, PluginSpec>,
        kind: &str,
        example: &str,
    ) -> Option<PluginSpec> {
        let Some(name) = name else {
            let article = if kind == "ingest" { "an" } else { "a" };
            self.floe_error(
                format!("transforms[{i}].kind"),
                format!("{article} `{kind}` step needs `plugin`"),
                Some(format!("add for example `plugin: {example}`, a key of `plugins`")),
            );
            return None;
        };
        if let Some(spec) = plugins.get(name) {
            return Some(spec.clone());
        }
        // A plugin that is declared but broken was reported with its declaration.
        if !self.project.floe.plugins.contains_key(name) {
            self.floe_error(
                format!("transforms[{i}].plugin"),
                format!("unknown plugin `{name}`"),
                Some(available("plugins", self.project.floe.plugins.keys())),
            );
        }
        None
    }

    /// Catalog profile, storage profile and namespace of a layer's tables.
    fn layer_target(&self, layer: &Ident) -> (String, String, Ident) {
        match self.project.platform.layers.get(layer) {
            Some(profile) => (
                profile.catalog_ref.clone(),
                profile.storage_ref.clone(),
                profile.namespace.clone().unwrap_or_else(|| layer.clone()),
            ),
            None => (self.project.floe.catalog.clone(), self.project.floe.storage.clone(), layer.clone()),
        }
    }

    /// The maintenance policy of a table of `layer` on `storage`: the
    /// layer's `maintenance`, then the storage profile's `retention`, then
    /// the defaults. Bad values are errors, once per layer.
    fn maintenance(&mut self, layer: &Ident, storage: &str) -> MaintenancePolicy {
        let platform = &self.project.platform;
        let asked = platform.layers.get(layer).map(|l| l.maintenance.clone()).unwrap_or_default();
        let retention = asked.retention.or_else(|| platform.storage.get(storage).and_then(|s| s.retention()));
        let policy = MaintenancePolicy {
            retention: retention.map_or(MaintenancePolicy::DEFAULT_RETENTION, |d| d.0),
            keep_last: asked.keep_last.unwrap_or(1),
            orphan_age: asked.orphan_age.map_or(MaintenancePolicy::DEFAULT_ORPHAN_AGE, |d| d.0),
            after_run: asked.after_run,
            target_file_size: asked.target_file_size.map_or(MaintenancePolicy::DEFAULT_TARGET_FILE_SIZE, |s| s.0),
            small_file_size: 0,
            max_manifests: asked.max_manifests.unwrap_or(MaintenancePolicy::DEFAULT_MAX_MANIFESTS),
        };
        let policy = MaintenancePolicy {
            small_file_size: asked
                .small_file_size
                .map_or(MaintenancePolicy::default_small_file_size(policy.target_file_size), |s| s.0),
            ..policy
        };
        let key = |field: &str| format!("layers.{layer}.maintenance.{field}");
        let reported = self.errors.0.iter().any(|e| e.key.starts_with(&format!("layers.{layer}.maintenance")));
        if !reported && policy.orphan_age < MaintenancePolicy::MIN_ORPHAN_AGE {
            self.platform_error(
                key("orphan_age"),
                "is under 1h: a write still running may commit files that young, and they would be deleted".into(),
                Some("write `orphan_age: 3 days` (the default), or at least `1h`".into()),
            );
        }
        if !reported && policy.target_file_size == 0 {
            self.platform_error(
                key("target_file_size"),
                "is 0: compaction needs a size to write files of".into(),
                Some(
                    "write `target_file_size: 512MiB` (the default), or `small_file_size: 0` to turn compaction off"
                        .into(),
                ),
            );
        }
        if !reported && policy.small_file_size > policy.target_file_size {
            self.platform_error(
                key("small_file_size"),
                "is larger than `target_file_size`: the files compaction writes would be compacted again".into(),
                Some("make `small_file_size` at most `target_file_size` (by default it is 3/4 of it)".into()),
            );
        }
        if !reported && policy.max_manifests == 0 {
            self.platform_error(
                key("max_manifests"),
                "is 0: a table with data has at least one manifest".into(),
                Some("write `max_manifests: 100` (the default) or at least 1".into()),
            );
        }
        if !reported && policy.keep_last == 0 {
            self.platform_error(
                key("keep_last"),
                "is 0: the current snapshot is always kept".into(),
                Some("write `keep_last: 1` (the default) or more".into()),
            );
        }
        policy
    }

    /// Resolves every `secret_ref` of the platform file before anything runs,
    /// so a missing secret fails fast and names where it was looked for.
    fn resolve_secrets(&mut self) {
        for (key, reference) in self.project.platform.secret_refs() {
            if self.resolved.contains_key(&reference.secret_ref) {
                continue;
            }
            match self.secrets.resolve(&reference) {
                Ok(secret) => {
                    self.resolved.insert(reference.secret_ref.clone(), secret);
                }
                Err(error) => {
                    let help = format!(
                        "set the environment variable {} or create the file {} (FLOE_SECRETS_DIR moves the directory)",
                        reference.env_var(),
                        reference.file(&self.secrets.secrets_dir).display()
                    );
                    self.platform_error(key, error.to_string(), Some(help));
                }
            }
        }
    }

    fn secret(&self, name: &str) -> Secret {
        // Unresolved secrets were reported; the plan is discarded then.
        self.resolved.get(name).cloned().unwrap_or_else(|| Secret::new(""))
    }

    fn catalog_spec(&self, profile: &CatalogProfile) -> CatalogSpec {
        match profile {
            CatalogProfile::Sql(sql) => CatalogSpec::Sql { uri: sql.uri.clone(), warehouse: sql.warehouse.clone() },
            CatalogProfile::Rest(rest) | CatalogProfile::Polaris(rest) => {
                let auth = match &rest.credentials {
                    None => RestAuth::None,
                    Some(CatalogCredentials::Bearer { token }) => {
                        RestAuth::Bearer { token: self.secret(&token.0.secret_ref) }
                    }
                    Some(CatalogCredentials::Oauth2 { client_id, client_secret, scope }) => RestAuth::Oauth2 {
                        client_id: match client_id {
                            ClientId::Literal(id) => Secret::new(id.clone()),
                            ClientId::Secret(reference) => self.secret(&reference.secret_ref),
                        },
                        client_secret: self.secret(&client_secret.0.secret_ref),
                        scope: scope.clone(),
                    },
                };
                let polaris_default = matches!(profile, CatalogProfile::Polaris(_))
                    .then(|| format!("{}/v1/oauth/tokens", rest.uri.trim_end_matches('/')));
                CatalogSpec::Rest(RestSpec {
                    uri: rest.uri.clone(),
                    warehouse: rest.warehouse.clone(),
                    auth,
                    oauth2_server_uri: rest.oauth2_server_uri.clone().or(polaris_default),
                })
            }
        }
    }

    fn storage_spec(&self, profile: &StorageProfile) -> StorageSpec {
        match profile {
            StorageProfile::Local { root, .. } => StorageSpec::Local { root: root.clone() },
            StorageProfile::S3 { endpoint, bucket, region, path_style_access, credentials, .. } => StorageSpec::S3 {
                endpoint: endpoint.clone(),
                bucket: bucket.clone(),
                region: region.clone(),
                path_style_access: *path_style_access,
                keys: match credentials {
                    Some(StorageCredentials::Static { secret_ref }) => Some(S3Keys {
                        access_key_id: self.secret(&format!("{secret_ref}/access_key_id")),
                        secret_access_key: self.secret(&format!("{secret_ref}/secret_access_key")),
                    }),
                    Some(StorageCredentials::Ambient) | None => None,
                },
            },
        }
    }

    /// Checks every plugin file and its pin; returns the good ones.
    fn plugins(&mut self) -> BTreeMap<String, PluginSpec> {
        let mut specs = BTreeMap::new();
        for (name, plugin) in &self.project.floe.plugins {
            let path = self.project.root.join(&plugin.path);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(error) => {
                    self.floe_error(
                        format!("plugins.{name}.path"),
                        format!("cannot read plugin `{name}` at `{}`: {error}", path.display()),
                        Some(plugin_help(&path)),
                    );
                    continue;
                }
            };
            let sha256 = sha256_hex(&bytes);
            if let Some(pin) = &plugin.sha256
                && !pin.eq_ignore_ascii_case(&sha256)
            {
                self.floe_error(
                    format!("plugins.{name}.sha256"),
                    format!("plugin `{name}` has sha256 {sha256}, but floe.yaml pins {pin}"),
                    Some("rebuild or re-download the plugin, or update the pin if the change is intended".into()),
                );
                continue;
            }
            specs.insert(name.clone(), PluginSpec { name: name.clone(), path, sha256 });
        }
        specs
    }

    fn plugin_config(&mut self, i: usize, config: &BTreeMap<String, serde_yaml::Value>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, value) in config {
            let text = match value {
                serde_yaml::Value::String(s) => s.clone(),
                serde_yaml::Value::Number(n) => n.to_string(),
                serde_yaml::Value::Bool(b) => b.to_string(),
                serde_yaml::Value::Null => String::new(),
                _ => {
                    self.floe_error(
                        format!("transforms[{i}].config.{key}"),
                        "plugin config values must be scalars (string, number, boolean)".into(),
                        Some("encode lists as a comma-separated string, for example `keys: \"a,b\"`".into()),
                    );
                    continue;
                }
            };
            out.insert(key.clone(), text);
        }
        out
    }
}

fn available<'k>(section: &str, known: impl Iterator<Item = &'k String>) -> String {
    let names: Vec<&str> = known.map(String::as_str).collect();
    if names.is_empty() {
        format!("no {section} are defined")
    } else {
        format!("available {section}: {}", names.join(", "))
    }
}

fn step_names(transforms: &[crate::config::Transform]) -> String {
    transforms.iter().map(|t| t.name.to_string()).collect::<Vec<_>>().join(", ")
}

fn available_in_layer(layer: &str, transforms: &[crate::config::Transform]) -> String {
    let names: Vec<String> =
        transforms.iter().filter(|t| t.layer.as_str() == layer).map(|t| format!("{layer}.{}", t.name)).collect();
    if names.is_empty() {
        format!("no step writes to layer `{layer}`")
    } else {
        format!("tables in layer `{layer}`: {}", names.join(", "))
    }
}

fn plugin_help(path: &Path) -> String {
    if path.to_string_lossy().contains("plugins/dist") {
        // The bundled JavaScript and Python ports end in `_js` / `_py`.
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let script = if stem.ends_with("_js") {
            "scripts/build-js-plugins.sh"
        } else if stem.ends_with("_py") {
            "scripts/build-py-plugins.sh"
        } else {
            "scripts/build-plugins.sh"
        };
        format!("build the bundled plugins with `{script}`")
    } else {
        "paths are relative to the directory of floe.yaml".into()
    }
}

/// Where a table lives: its layer's storage root, then namespace and name
/// (`file:///…/silver/stg_orders`, `s3://bucket/silver/stg_orders`).
fn table_location(storage: &StorageProfile, namespace: &Ident, name: &Ident) -> String {
    match storage {
        StorageProfile::Local { root, .. } => {
            format!("file://{}/{namespace}/{name}", root.display().to_string().trim_end_matches('/'))
        }
        StorageProfile::S3 { bucket, .. } => format!("s3://{bucket}/{namespace}/{name}"),
    }
}

/// The sandbox limits of platform.yaml's `plugins:`, each key absent taking
/// its default.
fn sandbox_limits(keys: &crate::config::PluginLimits) -> crate::sandbox::Limits {
    let d = crate::sandbox::Limits::default();
    let bytes = |v: Option<crate::config::ByteSize>, default: u64| v.map_or(default, |b| b.0);
    let time = |v: Option<crate::config::HumanDuration>, default| v.map_or(default, |t| t.0);
    crate::sandbox::Limits {
        memory_bytes: bytes(keys.memory_limit, d.memory_bytes),
        call_timeout: time(keys.call_timeout, d.call_timeout),
        step_timeout: time(keys.step_timeout, d.step_timeout),
        run_timeout: time(keys.run_timeout, d.run_timeout),
        max_output_bytes: bytes(keys.max_output_bytes, d.max_output_bytes),
        spill_bytes: bytes(keys.spill_limit, d.spill_bytes),
        max_component_bytes: bytes(keys.max_component_size, d.max_component_bytes),
        compile_memory_bytes: bytes(keys.compile_memory_limit, d.compile_memory_bytes),
        compile_timeout: time(keys.compile_timeout, d.compile_timeout),
        chunk_bytes: d.chunk_bytes,
        ingest_parallelism: keys.ingest_parallelism.map_or(d.ingest_parallelism, |n| n.0 as usize),
        ingest_chunk_bytes: keys
            .ingest_chunk_size
            .map_or(d.ingest_chunk_bytes, |b| usize::try_from(b.0).unwrap_or(usize::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::plugin_help;
    use std::path::Path;

    #[test]
    fn a_missing_bundled_plugin_names_the_script_that_builds_it() {
        let help = |p: &str| plugin_help(Path::new(p));
        assert_eq!(
            help("../plugins/dist/csv_ingest.wasm"),
            "build the bundled plugins with `scripts/build-plugins.sh`"
        );
        assert!(help("plugins/dist/pii_mask_js.wasm").contains("scripts/build-js-plugins.sh"));
        assert!(help("plugins/dist/csv_ingest_py.wasm").contains("scripts/build-py-plugins.sh"));
        assert_eq!(help("my/plugin.wasm"), "paths are relative to the directory of floe.yaml");
    }
}
