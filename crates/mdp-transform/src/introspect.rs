//! Introspection at run time: what dbt's `run_query`, `{% call statement %}` / `load_result`,
//! `adapter.get_relation` and `adapter.get_columns_in_relation` read from the warehouse, and the
//! objects templates see (agate-like tables, rows and columns; dbt's `Column`).
//!
//! Parsing never queries: there `execute` is false, `run_query` gives `none`, `get_relation` `none`
//! and `get_columns_in_relation` `[]`, as in dbt. A node whose Jinja may introspect (it, or a macro
//! file it calls, names one of these functions or `execute`) is compiled just before it runs, with
//! an [`Introspector`] on the warehouse, after the nodes it depends on were built.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};

/// The words that make a template introspective (see the module docs).
pub const INTROSPECTIVE_WORDS: &[&str] =
    &["execute", "run_query", "statement(", "load_result", "get_relation", "get_columns_in_relation", "load_relation"];

/// Whether a template's text may introspect.
pub fn may_introspect(text: &str) -> bool {
    INTROSPECTIVE_WORDS.iter().any(|w| text.contains(w))
}

/// A query's result: column names and types, and rows of JSON-like values (numbers as numbers,
/// dates and timestamps as ISO text, NULL as null).
#[derive(Debug, Clone, Default)]
pub struct QueryTable {
    pub columns: Vec<String>,
    pub types: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// A column of a relation, as `adapter.get_columns_in_relation` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub data_type: String,
}

/// What the warehouse answers during a render. Errors are messages for the template's error.
pub trait Introspector: Send + Sync + fmt::Debug {
    /// Run `sql`; `fetch`: return its rows (else an empty table, the statement still runs).
    fn query(&self, sql: &str, fetch: bool) -> Result<QueryTable, String>;
    /// The columns of `schema.identifier`, in order; empty when it does not exist.
    fn columns(&self, schema: &str, identifier: &str) -> Result<Vec<ColumnDef>, String>;
    /// Whether `schema.identifier` exists, and as a table (`Some("table")`) or view (`Some("view")`).
    fn relation_type(&self, schema: &str, identifier: &str) -> Result<Option<&'static str>, String>;
}

/// `run_query(...)` / `load_result(...).table`: an agate table's surface as dbt macros use it
/// (`rows`, `columns`, `column_names`, `column_types`, `print_table()`, `len`).
#[derive(Debug)]
pub struct AgateTable(pub Arc<QueryTable>);

impl AgateTable {
    fn row(&self, i: usize) -> Option<Value> {
        (i < self.0.rows.len()).then(|| Value::from_object(AgateRow { table: self.0.clone(), index: i }))
    }
}

impl Object for AgateTable {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(i) = key.as_usize() {
            return self.row(i);
        }
        Some(match key.as_str()? {
            "rows" => Value::from_object(AgateRows(self.0.clone())),
            "columns" => Value::from_object(AgateColumns(self.0.clone())),
            "column_names" => Value::from(self.0.columns.clone()),
            "column_types" => Value::from(self.0.types.clone()),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.rows.len())
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        match method {
            "print_table" => {
                tracing::info!(target: "mdp::jinja", "{}", self.0.columns.join(" | "));
                for row in &self.0.rows {
                    let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
                    tracing::info!(target: "mdp::jinja", "{}", cells.join(" | "));
                }
                Ok(Value::from(()))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `table.rows`: rows by position.
#[derive(Debug)]
struct AgateRows(Arc<QueryTable>);

impl Object for AgateRows {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = key.as_usize()?;
        (i < self.0.rows.len()).then(|| Value::from_object(AgateRow { table: self.0.clone(), index: i }))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.rows.len())
    }
}

/// One row: its values by position (`row[0]`) or column name (`row['n']`, `row.n`).
#[derive(Debug)]
struct AgateRow {
    table: Arc<QueryTable>,
    index: usize,
}

impl AgateRow {
    fn values(&self) -> &[serde_json::Value] {
        &self.table.rows[self.index]
    }
}

impl Object for AgateRow {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let position = match key.as_usize() {
            Some(i) => i,
            None => self.table.columns.iter().position(|c| Some(c.as_str()) == key.as_str())?,
        };
        self.values().get(position).map(Value::from_serialize)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.values().len())
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        match method {
            "values" => Ok(Value::from_iter(self.values().iter().map(Value::from_serialize))),
            "keys" => Ok(Value::from(self.table.columns.clone())),
            "items" => Ok(Value::from_iter(
                self.table
                    .columns
                    .iter()
                    .zip(self.values())
                    .map(|(c, v)| Value::from(vec![Value::from(c.clone()), Value::from_serialize(v)])),
            )),
            "dict" => Ok(Value::from_iter(
                self.table.columns.iter().cloned().zip(self.values().iter().map(Value::from_serialize)),
            )),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `table.columns`: columns by position or name.
#[derive(Debug)]
struct AgateColumns(Arc<QueryTable>);

impl Object for AgateColumns {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let index = match key.as_usize() {
            Some(i) => i,
            None => self.0.columns.iter().position(|c| Some(c.as_str()) == key.as_str())?,
        };
        (index < self.0.columns.len()).then(|| Value::from_object(AgateColumn { table: self.0.clone(), index }))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.columns.len())
    }

    /// agate's `MappedSequence`: `keys()` (names), `values()` (columns), `items()` (pairs).
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        let column = |index: usize| Value::from_object(AgateColumn { table: self.0.clone(), index });
        match method {
            "keys" => Ok(Value::from(self.0.columns.clone())),
            "values" => Ok(Value::from_iter((0..self.0.columns.len()).map(column))),
            "items" => Ok(Value::from_iter(
                self.0
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, name)| Value::from(vec![Value::from(name.clone()), column(i)])),
            )),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// One column: `name`, `data_type`, `values()`, `values_distinct()`.
#[derive(Debug)]
struct AgateColumn {
    table: Arc<QueryTable>,
    index: usize,
}

impl Object for AgateColumn {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "name" => Value::from(self.table.columns[self.index].clone()),
            "data_type" => Value::from(self.table.types[self.index].clone()),
            _ => return None,
        })
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        let values = self.table.rows.iter().map(|r| r[self.index].clone());
        match method {
            "values" => Ok(Value::from_iter(values.map(Value::from_serialize))),
            "values_distinct" => {
                let mut seen: Vec<serde_json::Value> = Vec::new();
                for v in values {
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
                Ok(Value::from_iter(seen.iter().map(Value::from_serialize)))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// dbt's `Column`: `name`/`column`, `data_type`/`dtype`, `quoted`, and the type tests macros use.
#[derive(Debug)]
pub struct ColumnObject {
    pub column: ColumnDef,
    /// The column name quoted for the target (`"Name"`).
    pub quoted: String,
}

impl ColumnObject {
    fn lower_type(&self) -> String {
        self.column.data_type.to_ascii_lowercase()
    }

    fn is_string(&self) -> bool {
        let t = self.lower_type();
        ["char", "text", "string", "varchar"].iter().any(|s| t.contains(s))
    }

    fn is_integer(&self) -> bool {
        let t = self.lower_type();
        ["int", "serial"].iter().any(|s| t.contains(s)) && !t.contains("interval")
    }

    fn is_float(&self) -> bool {
        let t = self.lower_type();
        ["float", "double", "real"].iter().any(|s| t.contains(s))
    }

    fn is_numeric(&self) -> bool {
        let t = self.lower_type();
        t.starts_with("numeric") || t.starts_with("decimal")
    }
}

impl Object for ColumnObject {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "name" | "column" => Value::from(self.column.name.clone()),
            "data_type" | "dtype" => Value::from(self.column.data_type.clone()),
            "quoted" => Value::from(self.quoted.clone()),
            _ => return None,
        })
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        Ok(Value::from(match method {
            "is_string" => self.is_string(),
            "is_integer" => self.is_integer(),
            "is_float" => self.is_float(),
            "is_numeric" => self.is_numeric(),
            "is_number" => self.is_integer() || self.is_float() || self.is_numeric(),
            "string_size" => {
                // `varchar(256)` → 256; dbt's default for an unsized string is 256.
                let t = self.lower_type();
                return Ok(Value::from(
                    t.split_once('(')
                        .and_then(|(_, rest)| rest.trim_end_matches(')').trim().parse::<i64>().ok())
                        .unwrap_or(256),
                ));
            }
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        }))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Column {} ({})>", self.column.name, self.column.data_type)
    }
}
