//! Opening catalogs and loading or creating tables in them.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use iceberg::io::LocalFsStorageFactory;
use iceberg::table::Table;
use iceberg::{
    Catalog, CatalogBuilder, ErrorKind, MetadataLocation, NamespaceIdent, TableCreation, TableIdent, TableRequirement,
    TableUpdate,
};
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalogBuilder};

use super::pointer::SqlPointer;
use super::{LakehouseError, schema};
use crate::plan::{CatalogSpec, TableRef};

/// A catalog opened for this run.
pub(super) struct OpenCatalog {
    pub name: String,
    pub catalog: Arc<dyn Catalog>,
    /// How a commit swaps the table's metadata pointer.
    pub pointer: SqlPointer,
}

impl OpenCatalog {
    pub async fn open(name: &str, spec: &CatalogSpec) -> Result<Self, LakehouseError> {
        let catalog_error = |message: &str| {
            let message = message.to_string();
            move |source| LakehouseError::Catalog { catalog: name.to_string(), message, source }
        };
        match spec {
            CatalogSpec::Sql { uri, warehouse } => {
                let uri = sqlite_uri(uri).map_err(catalog_error("cannot prepare the SQLite catalog file"))?;
                let warehouse =
                    warehouse_uri(warehouse).map_err(catalog_error("cannot create the warehouse folder"))?;
                let catalog = SqlCatalogBuilder::default()
                    .uri(uri.clone())
                    .warehouse_location(warehouse)
                    .sql_bind_style(SqlBindStyle::QMark)
                    .with_storage_factory(Arc::new(LocalFsStorageFactory))
                    .load(name, HashMap::new())
                    .await
                    .map_err(catalog_error("cannot open the SQL catalog"))?;
                let pointer =
                    SqlPointer::connect(&uri, name).await.map_err(catalog_error("cannot open the SQL catalog"))?;
                Ok(OpenCatalog { name: name.to_string(), catalog: Arc::new(catalog), pointer })
            }
            CatalogSpec::Rest(_) => Err(LakehouseError::NotYetSupported {
                catalog: name.to_string(),
                what: "REST and Polaris catalogs".to_string(),
            }),
        }
    }

    pub fn ident(table: &TableRef) -> TableIdent {
        TableIdent::new(NamespaceIdent::new(table.namespace.to_string()), table.name.to_string())
    }

    fn table_error(table: &TableRef, message: &'static str) -> impl FnOnce(iceberg::Error) -> LakehouseError {
        let table = table.to_string();
        move |source| LakehouseError::Table { table, message, source }
    }

    /// The table, or `None` if it does not exist.
    pub async fn load_table(&self, table: &TableRef) -> Result<Option<Table>, LakehouseError> {
        match self.catalog.load_table(&Self::ident(table)).await {
            Ok(loaded) => Ok(Some(loaded)),
            Err(e) if matches!(e.kind(), ErrorKind::TableNotFound | ErrorKind::NamespaceNotFound) => Ok(None),
            Err(e) => Err(Self::table_error(table, "cannot load table")(e)),
        }
    }

    /// Commits `updates` to `table` if `requirements` still hold: the one
    /// atomic step of every write. A lost race is a retryable
    /// `CatalogCommitConflicts` error.
    ///
    /// SQL catalog: the updates are applied to the loaded metadata here, the
    /// new metadata file is written, and the pointer is swapped only if it
    /// still names the file the table was loaded from.
    pub async fn commit(
        &self,
        table: &Table,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
    ) -> iceberg::Result<()> {
        for requirement in &requirements {
            requirement.check(Some(table.metadata()))?;
        }
        let current = table.metadata_location_result()?.to_string();
        let mut builder = table.metadata().clone().into_builder(Some(current.clone()));
        for update in updates {
            builder = update.apply(builder)?;
        }
        let metadata = builder.build()?.metadata;
        let location = MetadataLocation::from_str(&current)?.with_next_version().with_new_metadata(&metadata);
        metadata.write_to(table.file_io(), &location).await?;
        self.pointer.swap(table.identifier(), &current, &location.to_string()).await
    }

    /// Loads the table, or creates it (and its namespace) with the schema of
    /// `produced`. Whether an existing table can take `produced` is decided
    /// per commit attempt (`schema::target`).
    pub async fn load_or_create_table(&self, table: &TableRef, produced: &SchemaRef) -> Result<Table, LakehouseError> {
        if let Some(existing) = self.load_table(table).await? {
            return Ok(existing);
        }
        let namespace = NamespaceIdent::new(table.namespace.to_string());
        let exists = self
            .catalog
            .namespace_exists(&namespace)
            .await
            .map_err(Self::table_error(table, "cannot look up the namespace"))?;
        if !exists {
            match self.catalog.create_namespace(&namespace, HashMap::new()).await {
                Ok(_) => {}
                // Another writer created it meanwhile.
                Err(e) if e.kind() == ErrorKind::NamespaceAlreadyExists => {}
                Err(e) => return Err(Self::table_error(table, "cannot create the namespace")(e)),
            }
        }
        let iceberg_schema = schema::iceberg_schema(produced)
            .map_err(Self::table_error(table, "cannot derive an Iceberg schema from the step's output"))?;
        let creation = TableCreation::builder().name(table.name.to_string()).schema(iceberg_schema).build();
        match self.catalog.create_table(&namespace, creation).await {
            Ok(created) => Ok(created),
            Err(e) if e.kind() == ErrorKind::TableAlreadyExists => self
                .load_table(table)
                .await?
                .ok_or_else(|| LakehouseError::NoSuchTable { catalog: self.name.clone(), table: table.to_string() }),
            Err(e) => Err(Self::table_error(table, "cannot create table")(e)),
        }
    }
}

/// Makes sure the SQLite file's folder exists and that sqlx may create the file.
fn sqlite_uri(uri: &str) -> iceberg::Result<String> {
    let path = uri.strip_prefix("sqlite://").or_else(|| uri.strip_prefix("sqlite:")).unwrap_or(uri);
    let path = path.split('?').next().unwrap_or(path);
    if let Some(parent) = Path::new(path).parent()
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
