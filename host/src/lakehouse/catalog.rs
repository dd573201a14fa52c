//! Opening catalogs (the embedded SQL catalog or a REST catalog) and loading,
//! creating and committing tables in them.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use iceberg::io::FileIO;
use iceberg::spec::TableMetadataBuilder;
use iceberg::table::Table;
use iceberg::{
    Catalog, CatalogBuilder, ErrorKind, MetadataLocation, NamespaceIdent, TableCreation, TableIdent, TableRequirement,
    TableUpdate,
};
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalogBuilder};

use super::listing::Lister;
use super::pointer::SqlPointer;
use super::rest::{AuthError, OpenError, RestCatalog};
use super::{LakehouseError, partition, schema, storage};
use crate::config::PartitionField;
use crate::plan::{CatalogSpec, StorageSpec, TableRef};

/// A catalog opened for this run.
pub(super) struct OpenCatalog {
    pub name: String,
    /// Where the tables' files are, for messages (`S3 at … (bucket …)`).
    pub storage: String,
    /// Lists the tables' folders (orphan cleanup).
    pub lister: Lister,
    backend: Backend,
}

enum Backend {
    /// The embedded SQL catalog, and how a commit swaps its metadata pointer.
    Sql {
        catalog: Arc<dyn Catalog>,
        pointer: SqlPointer,
        /// The warehouse URI, under which new tables go by default.
        warehouse: String,
        file_io: FileIO,
    },
    Rest(RestCatalog),
}

impl OpenCatalog {
    /// Opens the catalog `name`, whose tables' files live on `storage`.
    pub async fn open(name: &str, spec: &CatalogSpec, storage: &StorageSpec) -> Result<Self, LakehouseError> {
        let catalog_error = |message: &str| {
            let message = message.to_string();
            move |source| LakehouseError::Catalog { catalog: name.to_string(), message, source }
        };
        let (factory, props) = storage::factory(storage).map_err(catalog_error("cannot open its storage"))?;
        let file_io = storage::file_io(factory.clone(), props.clone());
        let backend = match spec {
            CatalogSpec::Sql { uri, warehouse } => {
                let uri = sqlite_uri(uri).map_err(catalog_error("cannot prepare the SQLite catalog file"))?;
                let warehouse =
                    warehouse_uri(warehouse).map_err(catalog_error("cannot create the warehouse folder"))?;
                let catalog = SqlCatalogBuilder::default()
                    .uri(uri.clone())
                    .warehouse_location(warehouse.clone())
                    .sql_bind_style(SqlBindStyle::QMark)
                    .with_storage_factory(factory)
                    .load(name, props)
                    .await
                    .map_err(catalog_error("cannot open the SQL catalog"))?;
                let pointer =
                    SqlPointer::connect(&uri, name).await.map_err(catalog_error("cannot open the SQL catalog"))?;
                Backend::Sql { catalog: Arc::new(catalog), pointer, warehouse, file_io }
            }
            CatalogSpec::Rest(rest) => match RestCatalog::connect(rest, file_io).await {
                Ok(catalog) => Backend::Rest(catalog),
                Err(OpenError::Auth(error @ AuthError::Rejected { .. })) => {
                    return Err(LakehouseError::Refused { catalog: name.to_string(), message: error.to_string() });
                }
                // An endpoint that cannot be reached may be back on a retry.
                Err(OpenError::Auth(error @ AuthError::Failed { .. })) => {
                    let source = iceberg::Error::new(ErrorKind::Unexpected, error.to_string()).with_retryable(true);
                    return Err(catalog_error("cannot get a token for the REST catalog")(source));
                }
                Err(OpenError::Refused(error)) => {
                    return Err(LakehouseError::Refused {
                        catalog: name.to_string(),
                        message: error.message().to_string(),
                    });
                }
                Err(OpenError::Other(source)) => {
                    return Err(catalog_error("cannot connect to the REST catalog")(source));
                }
            },
        };
        Ok(OpenCatalog {
            name: name.to_string(),
            storage: storage::describe(storage),
            lister: Lister::new(storage),
            backend,
        })
    }

    pub fn ident(table: &TableRef) -> TableIdent {
        TableIdent::new(NamespaceIdent::new(table.namespace.to_string()), table.name.to_string())
    }

    fn table_error(table: &TableRef, message: &'static str) -> impl FnOnce(iceberg::Error) -> LakehouseError {
        let table = table.to_string();
        move |source| LakehouseError::Table { table, message, source }
    }

    /// Loads a table from the catalog.
    pub async fn load(&self, ident: &TableIdent) -> iceberg::Result<Table> {
        match &self.backend {
            Backend::Sql { catalog, .. } => catalog.load_table(ident).await,
            Backend::Rest(rest) => rest.load_table(ident).await,
        }
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> iceberg::Result<bool> {
        match &self.backend {
            Backend::Sql { catalog, .. } => catalog.namespace_exists(namespace).await,
            Backend::Rest(rest) => rest.namespace_exists(namespace).await,
        }
    }

    /// The table, or `None` if it does not exist. Metadata that cannot be
    /// parsed is `LakehouseError::Corrupt`, naming the file where the SQL
    /// catalog says it is.
    pub async fn load_table(&self, table: &TableRef) -> Result<Option<Table>, LakehouseError> {
        match self.load(&Self::ident(table)).await {
            Ok(loaded) => Ok(Some(loaded)),
            Err(e) if matches!(e.kind(), ErrorKind::TableNotFound | ErrorKind::NamespaceNotFound) => Ok(None),
            Err(e) if e.kind() == ErrorKind::DataInvalid => {
                let file = match &self.backend {
                    Backend::Sql { pointer, .. } => pointer.current(&Self::ident(table)).await,
                    Backend::Rest(_) => None,
                };
                Err(LakehouseError::Corrupt {
                    table: table.to_string(),
                    what: "its metadata file",
                    file: file.unwrap_or_else(|| "(the catalog's current metadata)".to_owned()),
                    message: e.to_string(),
                })
            }
            // Its metadata file is on the storage: name it when that failed.
            Err(e) => Err(Self::table_error(table, "cannot load table")(e).on_storage_named(&self.storage)),
        }
    }

    /// Commits `updates` to `table` if `requirements` still hold: the one
    /// atomic step of every write. A lost race is a retryable
    /// `CatalogCommitConflicts` error.
    ///
    /// SQL catalog: the updates are applied to the loaded metadata here, the
    /// new metadata file is written, and the pointer is swapped only if it
    /// still names the file the table was loaded from. REST catalog: the
    /// server checks and applies them.
    pub async fn commit(
        &self,
        table: &Table,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
    ) -> iceberg::Result<()> {
        let pointer = match &self.backend {
            Backend::Sql { pointer, .. } => pointer,
            Backend::Rest(rest) if table.metadata_location().is_none() => {
                // A staged table: created by this commit, with its first
                // snapshot, as a create transaction (`assert-create`).
                let mut all = creation_updates(table.metadata());
                all.extend(updates);
                create_failpoint()?;
                return rest.commit(table.identifier(), &[TableRequirement::NotExist], &all).await;
            }
            Backend::Rest(rest) => return rest.commit(table.identifier(), &requirements, &updates).await,
        };
        for requirement in &requirements {
            requirement.check(Some(table.metadata()))?;
        }
        // `None` for a staged table (`load_or_stage_table`): created by this
        // commit, with its first snapshot, in one INSERT.
        let current = table.metadata_location().map(str::to_string);
        let mut builder = table.metadata().clone().into_builder(current.clone());
        for update in updates {
            builder = update.apply(builder)?;
        }
        let metadata = builder.build()?.metadata;
        let location = match &current {
            Some(current) => MetadataLocation::from_str(current)?.with_next_version().with_new_metadata(&metadata),
            None => MetadataLocation::new_with_metadata(metadata.location(), &metadata),
        };
        metadata.write_to(table.file_io(), &location).await?;
        match current {
            Some(current) => pointer.swap(table.identifier(), &current, &location.to_string()).await,
            None => {
                create_failpoint()?;
                pointer.create(table.identifier(), &location.to_string()).await
            }
        }
    }

    /// The table to write to: loaded (checked as `load_or_create_table`
    /// does), or, if it does not exist, staged: its metadata made at
    /// `location` or where the catalog would place it, so data files can be
    /// written before the table exists. The commit creates a staged table
    /// with its first snapshot (`commit`), so a step that fails, or a process
    /// killed at any point, leaves no table. Returns whether it is staged.
    pub async fn load_or_stage_table(
        &self,
        table: &TableRef,
        produced: &SchemaRef,
        partition_by: &[PartitionField],
        location: Option<&str>,
    ) -> Result<(Table, bool), LakehouseError> {
        if let Some(existing) = self.load_table(table).await? {
            partition::check_spec(&existing, table, partition_by)?;
            return Ok((existing, false));
        }
        let (catalog, warehouse, file_io) = match &self.backend {
            Backend::Sql { catalog, warehouse, file_io, .. } => (catalog, warehouse, file_io),
            Backend::Rest(rest) => return self.stage_rest_table(rest, table, produced, partition_by, location).await,
        };
        let location = match location {
            Some(location) => location.to_string(),
            None => {
                // As the SQL catalog places it: under the namespace's location, or the warehouse.
                let namespace = NamespaceIdent::new(table.namespace.to_string());
                let namespace_location = match catalog.get_namespace(&namespace).await {
                    Ok(found) => found.properties().get("location").cloned(),
                    Err(e) if e.kind() == ErrorKind::NamespaceNotFound => None,
                    Err(e) => return Err(Self::table_error(table, "cannot look up the namespace")(e)),
                };
                let base = namespace_location.unwrap_or_else(|| format!("{warehouse}/{}", table.namespace));
                format!("{}/{}", base.trim_end_matches('/'), table.name)
            }
        };
        let creation = Self::creation(table, produced, partition_by, Some(&location))?;
        let staged = TableMetadataBuilder::from_table_creation(creation)
            .and_then(|builder| builder.build())
            .and_then(|built| {
                let runtime = iceberg::Runtime::try_current()?;
                Table::builder()
                    .metadata(built.metadata)
                    .identifier(Self::ident(table))
                    .file_io(file_io.clone())
                    .runtime(runtime)
                    .build()
            })
            .map_err(Self::table_error(table, "cannot prepare the new table"))?;
        Ok((staged, true))
    }

    /// `load_or_stage_table` of a new table on a REST catalog: the catalog
    /// places it (`stage-create`), and the commit creates it. A catalog that
    /// refuses staging gets the table created now, as before, with a warning:
    /// a step that fails then leaves an empty table.
    async fn stage_rest_table(
        &self,
        rest: &RestCatalog,
        table: &TableRef,
        produced: &SchemaRef,
        partition_by: &[PartitionField],
        location: Option<&str>,
    ) -> Result<(Table, bool), LakehouseError> {
        let namespace = self.ensure_namespace(table).await?;
        let creation = Self::creation(table, produced, partition_by, location)?;
        match rest.stage_table(&namespace, creation).await {
            Ok(staged) => Ok((staged, true)),
            Err(e) if e.kind() == ErrorKind::TableAlreadyExists => {
                Ok((self.load_or_create_table(table, produced, partition_by, location).await?, false))
            }
            Err(e) => {
                tracing::warn!(catalog = %self.name, %table, error = %e,
                    "The catalog does not stage new tables; creating the table now, before its data is committed.");
                Ok((self.load_or_create_table(table, produced, partition_by, location).await?, false))
            }
        }
    }

    /// What creating `table` with the schema of `produced` takes.
    fn creation(
        table: &TableRef,
        produced: &SchemaRef,
        partition_by: &[PartitionField],
        location: Option<&str>,
    ) -> Result<TableCreation, LakehouseError> {
        let iceberg_schema = schema::iceberg_schema(produced)
            .map_err(Self::table_error(table, "cannot derive an Iceberg schema from the step's output"))?;
        let spec = partition::unbound_spec(table, partition_by, &iceberg_schema)?;
        Ok(TableCreation::builder()
            .name(table.name.to_string())
            .schema(iceberg_schema)
            .partition_spec(spec)
            .location_opt(location.map(str::to_string))
            .build())
    }

    /// Loads the table, checking that it is partitioned by `partition_by`,
    /// or creates it (and its namespace) with the schema of `produced` and that
    /// partitioning, at `location` if given. Whether an existing table can
    /// take `produced` is decided per commit attempt (`schema::target`).
    pub async fn load_or_create_table(
        &self,
        table: &TableRef,
        produced: &SchemaRef,
        partition_by: &[PartitionField],
        location: Option<&str>,
    ) -> Result<Table, LakehouseError> {
        let check = |existing: Table| {
            partition::check_spec(&existing, table, partition_by)?;
            Ok(existing)
        };
        if let Some(existing) = self.load_table(table).await? {
            return check(existing);
        }
        let namespace = self.ensure_namespace(table).await?;
        let creation = Self::creation(table, produced, partition_by, location)?;
        let created = match &self.backend {
            Backend::Sql { catalog, .. } => catalog.create_table(&namespace, creation).await,
            Backend::Rest(rest) => rest.create_table(&namespace, creation).await,
        };
        match created {
            Ok(created) => Ok(created),
            // Another writer created it meanwhile (the SQL catalog may report
            // that race as a failed insert): use theirs if it fits.
            Err(e) => match self.load_table(table).await {
                Ok(Some(existing)) => check(existing),
                _ if e.kind() == ErrorKind::TableAlreadyExists => {
                    Err(LakehouseError::NoSuchTable { catalog: self.name.clone(), table: table.to_string() })
                }
                _ => Err(Self::table_error(table, "cannot create table")(e)),
            },
        }
    }

    /// Creates the table's namespace if it does not exist yet; returns it.
    pub async fn ensure_namespace(&self, table: &TableRef) -> Result<NamespaceIdent, LakehouseError> {
        let namespace = NamespaceIdent::new(table.namespace.to_string());
        let exists = self
            .namespace_exists(&namespace)
            .await
            .map_err(Self::table_error(table, "cannot look up the namespace"))?;
        if !exists {
            let created = match &self.backend {
                Backend::Sql { catalog, .. } => catalog.create_namespace(&namespace, HashMap::new()).await.map(|_| ()),
                Backend::Rest(rest) => rest.create_namespace(&namespace).await,
            };
            match created {
                Ok(_) => {}
                // Another writer created it meanwhile. The SQL catalog reports
                // that race as a failed insert, not as `NamespaceAlreadyExists`.
                Err(e)
                    if e.kind() == ErrorKind::NamespaceAlreadyExists
                        || self.namespace_exists(&namespace).await.unwrap_or(false) => {}
                Err(e) => return Err(Self::table_error(table, "cannot create the namespace")(e)),
            }
        }
        Ok(namespace)
    }
}

/// Whether the catalog may hold tables already: an embedded catalog whose
/// SQLite file does not exist has none (and opening it would create it).
pub fn catalog_exists(spec: &CatalogSpec) -> bool {
    match spec {
        CatalogSpec::Sql { uri, .. } => sqlite_path(uri).exists(),
        CatalogSpec::Rest(_) => true,
    }
}

/// The SQLite file of a `sqlite:` URI.
fn sqlite_path(uri: &str) -> &Path {
    let path = uri.strip_prefix("sqlite://").or_else(|| uri.strip_prefix("sqlite:")).unwrap_or(uri);
    Path::new(path.split('?').next().unwrap_or(path))
}

/// Makes sure the SQLite file's folder exists and that sqlx may create the file.
fn sqlite_uri(uri: &str) -> iceberg::Result<String> {
    if let Some(parent) = sqlite_path(uri).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(io_error)?;
    }
    Ok(if uri.contains('?') { uri.to_string() } else { format!("{uri}?mode=rwc") })
}

/// A `file://` URI for a local warehouse folder, created if missing.
fn warehouse_uri(warehouse: &str) -> iceberg::Result<String> {
    if warehouse.contains("://") {
        return Ok(warehouse.to_string());
    }
    std::fs::create_dir_all(warehouse).map_err(io_error)?;
    let absolute = std::path::absolute(warehouse).map_err(io_error)?;
    Ok(format!("file://{}", absolute.display()))
}

fn io_error(error: std::io::Error) -> iceberg::Error {
    iceberg::Error::new(ErrorKind::Unexpected, error.to_string())
}

/// The `create-table` failpoint (`crate::failpoint`): right before the
/// catalog write that makes a new table visible.
fn create_failpoint() -> iceberg::Result<()> {
    crate::failpoint::hit("create-table").map_err(|e| iceberg::Error::new(ErrorKind::Unexpected, e.to_string()))
}

/// The updates that create a table as `metadata` describes it: what a REST
/// create transaction sends before the first snapshot's own updates.
fn creation_updates(metadata: &iceberg::spec::TableMetadata) -> Vec<TableUpdate> {
    vec![
        TableUpdate::AssignUuid { uuid: metadata.uuid() },
        TableUpdate::UpgradeFormatVersion { format_version: metadata.format_version() },
        TableUpdate::AddSchema { schema: metadata.current_schema().as_ref().clone() },
        TableUpdate::SetCurrentSchema { schema_id: -1 },
        TableUpdate::AddSpec { spec: metadata.default_partition_spec().as_ref().clone().into_unbound() },
        TableUpdate::SetDefaultSpec { spec_id: -1 },
        TableUpdate::AddSortOrder { sort_order: metadata.default_sort_order().as_ref().clone() },
        TableUpdate::SetDefaultSortOrder { sort_order_id: -1 },
        TableUpdate::SetLocation { location: metadata.location().to_string() },
        TableUpdate::SetProperties { updates: metadata.properties().clone() },
    ]
}
