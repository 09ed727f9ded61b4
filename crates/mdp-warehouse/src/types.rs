//! Column types mdp creates tables with, and their Arrow representation.
//!
//! mdp's own tables (raw layer, metadata) are declared once as a [`TableSchema`]; each dialect maps the
//! types to its DDL and the bulk loaders map them to Arrow. Money is always [`ColumnType::Decimal`],
//! never a float.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Arrow field metadata key that marks a UTF-8 column as JSON text.
pub const LOGICAL_TYPE_KEY: &str = "mdp.logical_type";

/// A portable column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Int32,
    Int64,
    Float64,
    /// Exact decimal with precision and scale (money, fractional conversions).
    Decimal(u8, i8),
    Boolean,
    Date,
    /// Timestamp without time zone; mdp stores UTC in these.
    Timestamp,
    /// A JSON document (raw API payloads). DuckDB `JSON`, Postgres `jsonb`.
    Json,
}

impl ColumnType {
    /// The Arrow type used to carry values of this column in record batches.
    pub fn arrow_type(self) -> DataType {
        match self {
            ColumnType::Text | ColumnType::Json => DataType::Utf8,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Decimal(p, s) => DataType::Decimal128(p, s),
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }

    /// The column type for an Arrow field (the inverse of [`ColumnType::arrow_type`]).
    pub fn from_arrow_field(field: &Field) -> Option<ColumnType> {
        if field.metadata().get(LOGICAL_TYPE_KEY).map(String::as_str) == Some("json") {
            return Some(ColumnType::Json);
        }
        Some(match field.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnType::Text,
            DataType::Int32 => ColumnType::Int32,
            DataType::Int64 => ColumnType::Int64,
            DataType::Float64 => ColumnType::Float64,
            DataType::Decimal128(p, s) => ColumnType::Decimal(*p, *s),
            DataType::Boolean => ColumnType::Boolean,
            DataType::Date32 => ColumnType::Date,
            DataType::Timestamp(TimeUnit::Microsecond, None) => ColumnType::Timestamp,
            _ => return None,
        })
    }
}

/// One column of a table mdp creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
}

impl ColumnDef {
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        ColumnDef { name: name.into(), ty, nullable: true }
    }
    pub fn not_null(mut self) -> Self {
        self.nullable = false;
        self
    }
}

/// The columns (and optional primary key) of a table mdp creates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableSchema {
    pub columns: Vec<ColumnDef>,
    pub primary_key: Vec<String>,
}

impl TableSchema {
    pub fn new(columns: Vec<ColumnDef>) -> Self {
        TableSchema { columns, primary_key: Vec::new() }
    }
    pub fn with_primary_key(mut self, key: &[&str]) -> Self {
        self.primary_key = key.iter().map(|k| k.to_string()).collect();
        self
    }

    /// The Arrow schema that record batches for this table must have.
    pub fn arrow_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| {
                let field = Field::new(&c.name, c.ty.arrow_type(), c.nullable);
                if c.ty == ColumnType::Json {
                    field.with_metadata(HashMap::from([(LOGICAL_TYPE_KEY.to_string(), "json".to_string())]))
                } else {
                    field
                }
            })
            .collect();
        Arc::new(Schema::new(fields))
    }
}
