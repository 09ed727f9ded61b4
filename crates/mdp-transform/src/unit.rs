//! dbt unit tests (`unit_tests:` in properties files, dbt-core 1.8+): a model's SQL run on fixed
//! input rows (`given`), its output compared with `expect`, without touching the real tables.
//!
//! - Parse ([`UnitTestDef::parse`]): the model, the inputs (`ref('x')`, `ref('pkg', 'x')`,
//!   `source('s', 't')`, `this`), rows as `dict` (the default), `csv` or `sql`, inline or from a
//!   `fixture:` file in a test path's `fixtures/` folder; `overrides` of `vars` and of the
//!   `is_incremental` macro. Anything else is refused here with the file and the test's name.
//! - Compile ([`crate::compile`]): the model's own template renders with each given input's
//!   `ref`/`source`/`this` as a CTE name (`__dbt__cte__<name>`).
//! - Run ([`crate::materialize::run_unit_test`]), in a transaction that is rolled back: each
//!   input's rows become a CTE typed by the input relation's columns (all of them, missing ones
//!   NULL, as dbt), the model's output types are read from a scratch view, the expected rows are
//!   cast to them, and the two sides compare as multisets of rows (dbt's unordered diff), on the
//!   expected columns only. A difference fails the test and lists the rows that differ.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value as Json;

use mdp_warehouse::{ColumnInfo, Dialect, WarehouseError};

/// What a given input replaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Input {
    Ref {
        package: Option<String>,
        name: String,
    },
    Source {
        source: String,
        table: String,
    },
    /// The model's own relation (incremental models).
    This,
}

impl Input {
    /// Read `ref('x')`, `ref('pkg', 'x')`, `source('s', 't')` or `this`.
    pub fn parse(text: &str) -> Option<Input> {
        let t = text.trim();
        if t == "this" {
            return Some(Input::This);
        }
        let (func, args) = t.split_once('(')?;
        let args = args.strip_suffix(')')?;
        let args: Vec<String> = args
            .split(',')
            .map(|a| {
                let a = a.trim();
                let unquoted = a
                    .strip_prefix('\'')
                    .and_then(|a| a.strip_suffix('\''))
                    .or_else(|| a.strip_prefix('"').and_then(|a| a.strip_suffix('"')))?;
                Some(unquoted.to_string())
            })
            .collect::<Option<_>>()?;
        match (func.trim(), args.as_slice()) {
            ("ref", [name]) => Some(Input::Ref { package: None, name: name.clone() }),
            ("ref", [package, name]) => Some(Input::Ref { package: Some(package.clone()), name: name.clone() }),
            ("source", [source, table]) => Some(Input::Source { source: source.clone(), table: table.clone() }),
            _ => None,
        }
    }

    /// The CTE that stands for it in the model's SQL.
    pub fn cte_name(&self) -> String {
        match self {
            Input::Ref { name, .. } => format!("__dbt__cte__{name}"),
            Input::Source { source, table } => format!("__dbt__cte__{source}_{table}"),
            Input::This => "__dbt__cte__this".into(),
        }
    }
}

/// Rows of an input or of the expectation.
#[derive(Debug, Clone, PartialEq)]
pub enum Rows {
    /// `format: dict`: one mapping of column to value per row.
    Dicts(Vec<IndexMap<String, Json>>),
    /// `format: csv`: a header line, then rows (an empty field is NULL).
    Csv { header: Vec<String>, rows: Vec<Vec<Option<String>>> },
    /// `format: sql`: a query that returns the rows (every column of the input).
    Sql(String),
}

impl Rows {
    /// The columns the rows name (for `sql`, none: the query says).
    pub fn columns(&self) -> Vec<String> {
        match self {
            Rows::Dicts(rows) => {
                let mut out: Vec<String> = Vec::new();
                for row in rows {
                    for key in row.keys() {
                        if !out.iter().any(|c| c.eq_ignore_ascii_case(key)) {
                            out.push(key.clone());
                        }
                    }
                }
                out
            }
            Rows::Csv { header, .. } => header.clone(),
            Rows::Sql(_) => Vec::new(),
        }
    }

    /// Each row's value for each of `columns` (None: NULL or not given), as text (`true`, `10.5`, …).
    fn cells(&self, columns: &[String]) -> Vec<Vec<Cell>> {
        match self {
            Rows::Dicts(rows) => rows
                .iter()
                .map(|row| {
                    columns
                        .iter()
                        .map(|c| match row.iter().find(|(k, _)| k.eq_ignore_ascii_case(c)).map(|(_, v)| v) {
                            None => Cell::Missing,
                            Some(Json::Null) => Cell::Null,
                            Some(Json::String(s)) => Cell::Text(s.clone()),
                            Some(Json::Number(n)) => Cell::Number(n.to_string()),
                            Some(Json::Bool(b)) => Cell::Bool(*b),
                            Some(other) => Cell::Text(other.to_string()),
                        })
                        .collect()
                })
                .collect(),
            Rows::Csv { header, rows } => rows
                .iter()
                .map(|row| {
                    columns
                        .iter()
                        .map(|c| match header.iter().position(|h| h.eq_ignore_ascii_case(c)) {
                            None => Cell::Missing,
                            Some(i) => match row.get(i).cloned().flatten() {
                                None => Cell::Null,
                                Some(v) => Cell::Text(v),
                            },
                        })
                        .collect()
                })
                .collect(),
            Rows::Sql(_) => Vec::new(),
        }
    }

    fn read(value: &Json, format: &str, fixture: Option<&str>, what: &str) -> Result<Rows, String> {
        match format {
            "dict" => {
                if fixture.is_some() {
                    return Err(format!(
                        "{what}: `fixture:` files hold csv or sql rows; set `format: csv` or `format: sql`"
                    ));
                }
                match value {
                    Json::Null => Ok(Rows::Dicts(Vec::new())),
                    Json::Array(items) => items
                        .iter()
                        .map(|item| match item {
                            Json::Object(map) => Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
                            other => Err(format!("{what}: each row is a mapping of column to value, not {other}")),
                        })
                        .collect::<Result<_, _>>()
                        .map(Rows::Dicts),
                    other => Err(format!("{what}: `rows:` is a list of mappings (format: dict), not {other}")),
                }
            }
            "csv" => {
                let text = match (fixture, value) {
                    (Some(text), _) => text.to_string(),
                    (None, Json::String(text)) => text.clone(),
                    (None, other) => return Err(format!("{what}: `format: csv` rows are a CSV text, not {other}")),
                };
                let mut reader =
                    csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(text.as_bytes());
                let header: Vec<String> = reader
                    .headers()
                    .map_err(|e| format!("{what}: CSV header: {e}"))?
                    .iter()
                    .map(str::to_string)
                    .collect();
                let mut rows = Vec::new();
                for (i, record) in reader.records().enumerate() {
                    let record = record.map_err(|e| format!("{what}: CSV row {}: {e}", i + 1))?;
                    rows.push(record.iter().map(|v| (!v.is_empty()).then(|| v.to_string())).collect());
                }
                Ok(Rows::Csv { header, rows })
            }
            "sql" => match (fixture, value) {
                (Some(text), _) => Ok(Rows::Sql(text.to_string())),
                (None, Json::String(text)) => Ok(Rows::Sql(text.clone())),
                (None, other) => Err(format!("{what}: `format: sql` rows are a SQL query, not {other}")),
            },
            other => Err(format!("{what}: unknown format `{other}`; expected dict, csv or sql")),
        }
    }
}

#[derive(Debug, Clone)]
enum Cell {
    Missing,
    Null,
    Text(String),
    Number(String),
    Bool(bool),
}

/// One `given:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Given {
    pub input: Input,
    /// As written (`ref('stg_orders')`), for messages.
    pub written: String,
    pub rows: Rows,
}

/// A unit test as declared.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitTestDef {
    pub name: String,
    /// The model it tests, by name.
    pub model: String,
    pub given: Vec<Given>,
    pub expect: Rows,
    /// `overrides.vars`.
    pub vars: IndexMap<String, Json>,
    /// `overrides.macros.is_incremental`.
    pub is_incremental: Option<bool>,
    pub description: String,
    pub config: IndexMap<String, Json>,
}

impl UnitTestDef {
    /// Read one entry of `unit_tests:`. `fixture(name, ext)` reads a fixture file's text.
    pub fn parse(entry: &Json, fixture: &dyn Fn(&str, &str) -> Option<String>) -> Result<UnitTestDef, String> {
        let name =
            entry.get("name").and_then(Json::as_str).ok_or("an entry under `unit_tests:` has no `name:`")?.to_string();
        let what = |part: &str| format!("unit test `{name}`{part}");
        let model = match entry.get("model") {
            Some(Json::String(m)) if !m.trim().is_empty() => m.trim().to_string(),
            _ => return Err(format!("{}: `model:` names the model it tests", what(""))),
        };
        let rows_of = |block: &Json, part: &str| -> Result<Rows, String> {
            let format = block.get("format").and_then(Json::as_str).unwrap_or("dict");
            let text = match block.get("fixture").and_then(Json::as_str) {
                Some(f) => {
                    let ext = if format == "sql" { "sql" } else { "csv" };
                    Some(fixture(f, ext).ok_or_else(|| {
                        format!(
                            "{}: fixture `{f}` not found (looked for fixtures/{f}.{ext} in the test paths)",
                            what(part)
                        )
                    })?)
                }
                None => None,
            };
            Rows::read(block.get("rows").unwrap_or(&Json::Null), format, text.as_deref(), &what(part))
        };
        let mut given = Vec::new();
        for (i, g) in entry.get("given").and_then(Json::as_array).into_iter().flatten().enumerate() {
            let written = g.get("input").and_then(Json::as_str).unwrap_or_default().to_string();
            let part = format!(", given #{}", i + 1);
            let input = Input::parse(&written).ok_or_else(|| {
                format!(
                    "{}: input `{written}` must be ref('model'), ref('package', 'model'), source('source', 'table') or this",
                    what(&part)
                )
            })?;
            let rows = rows_of(g, &part)?;
            given.push(Given { input, written, rows });
        }
        let expect = match entry.get("expect") {
            Some(block) => rows_of(block, ", expect")?,
            None => return Err(format!("{}: `expect:` gives the rows the model must return", what(""))),
        };
        let mut vars = IndexMap::new();
        let mut is_incremental = None;
        if let Some(overrides) = entry.get("overrides") {
            for (key, value) in overrides.as_object().into_iter().flatten() {
                match key.as_str() {
                    "vars" => {
                        for (k, v) in value.as_object().into_iter().flatten() {
                            vars.insert(k.clone(), v.clone());
                        }
                    }
                    "macros" => {
                        for (m, v) in value.as_object().into_iter().flatten() {
                            match (m.as_str(), v) {
                                ("is_incremental", Json::Bool(b)) => is_incremental = Some(*b),
                                _ => {
                                    return Err(format!(
                                        "{}: overriding macro `{m}` is not supported by mdp (only is_incremental: true/false)",
                                        what("")
                                    ))
                                }
                            }
                        }
                    }
                    other => {
                        return Err(format!(
                            "{}: `overrides.{other}` is not supported by mdp (vars and macros.is_incremental are)",
                            what("")
                        ))
                    }
                }
            }
        }
        let mut config: IndexMap<String, Json> =
            entry.get("config").and_then(|c| serde_json::from_value(c.clone()).ok()).unwrap_or_default();
        if let Some(tags) = entry.get("tags") {
            config.insert("tags".into(), tags.clone());
        }
        Ok(UnitTestDef {
            name,
            model,
            given,
            expect,
            vars,
            is_incremental,
            description: entry.get("description").and_then(Json::as_str).unwrap_or_default().to_string(),
            config,
        })
    }
}

/// A fixture file `fixtures/<name>.<ext>` under one of `test_paths` (searched recursively).
pub fn find_fixture(root: &Path, test_paths: &[String], name: &str, ext: &str) -> Option<PathBuf> {
    let wanted = format!("{name}.{ext}");
    for dir in test_paths {
        let base = root.join(dir).join("fixtures");
        let mut stack = vec![base];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            for path in entries {
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().is_some_and(|f| f.to_string_lossy() == wanted) {
                    return Some(path);
                }
            }
        }
    }
    None
}

/// A value as SQL, cast to `ty` when the column's type is known.
fn literal(d: &dyn Dialect, cell: &Cell, ty: Option<&str>) -> Result<String, WarehouseError> {
    let raw = match cell {
        Cell::Missing | Cell::Null => "NULL".to_string(),
        Cell::Text(s) => d.string_literal(s)?,
        Cell::Number(n) => n.clone(),
        Cell::Bool(b) => b.to_string(),
    };
    Ok(match ty.filter(|t| castable(t)) {
        Some(ty) => match cell {
            // Casting from text reads every type both engines know the same way.
            Cell::Number(n) => format!("cast({} as {ty})", d.string_literal(n)?),
            Cell::Bool(b) => format!("cast({} as {ty})", d.string_literal(&b.to_string())?),
            _ => format!("cast({raw} as {ty})"),
        },
        None => raw,
    })
}

/// Whether an information_schema type name can be written in a cast (not Postgres' `ARRAY` or
/// `USER-DEFINED`).
fn castable(ty: &str) -> bool {
    !ty.is_empty() && !ty.eq_ignore_ascii_case("ARRAY") && !ty.eq_ignore_ascii_case("USER-DEFINED")
}

/// The rows as a query: every column of `columns` (typed), or the rows' own columns when the
/// relation's columns are unknown (it does not exist), a missing value NULL. No rows: an empty
/// query of the same columns.
pub fn rows_sql(d: &dyn Dialect, rows: &Rows, columns: &[ColumnInfo]) -> Result<String, WarehouseError> {
    if let Rows::Sql(sql) = rows {
        return Ok(sql.trim().trim_end_matches(';').to_string());
    }
    let (names, types): (Vec<String>, Vec<Option<&str>>) = if columns.is_empty() {
        (rows.columns(), rows.columns().iter().map(|_| None).collect())
    } else {
        (columns.iter().map(|c| c.name.clone()).collect(), columns.iter().map(|c| Some(c.data_type.as_str())).collect())
    };
    let quoted: Vec<String> = names.iter().map(|n| d.quote_identifier(n)).collect::<Result<_, _>>()?;
    let cells = rows.cells(&names);
    if cells.is_empty() {
        let nulls: Vec<String> = quoted
            .iter()
            .zip(&types)
            .map(|(q, ty)| Ok(format!("{} as {q}", literal(d, &Cell::Null, *ty)?)))
            .collect::<Result<_, WarehouseError>>()?;
        return Ok(format!("select {} where 1 = 0", nulls.join(", ")));
    }
    let selects: Vec<String> = cells
        .iter()
        .map(|row| {
            let cols: Vec<String> = row
                .iter()
                .zip(quoted.iter().zip(&types))
                .map(|(cell, (q, ty))| Ok(format!("{} as {q}", literal(d, cell, *ty)?)))
                .collect::<Result<_, WarehouseError>>()?;
            Ok(format!("select {}", cols.join(", ")))
        })
        .collect::<Result<_, WarehouseError>>()?;
    Ok(selects.join("\nunion all\n"))
}

/// A value as compared: a decimal number without trailing zeros (Postgres' `numeric` prints the
/// scale it was given: `5.0` and `5.00` are the same number, as for dbt), anything else as is.
fn comparable(v: &Option<String>) -> Option<String> {
    let v = v.as_deref()?;
    let body = v.strip_prefix('-').unwrap_or(v);
    let numeric = match body.split_once('.') {
        Some((int, frac)) => {
            !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    };
    if !numeric {
        return Some(v.to_string());
    }
    let trimmed = v.trim_end_matches('0').trim_end_matches('.');
    Some(if trimmed == "-0" { "0".to_string() } else { trimmed.to_string() })
}

/// Rows read back as text (NULL as None).
pub type TextRows = Vec<Vec<Option<String>>>;

/// The rows of the two sides that the other lacks (as multisets): (only expected, only actual).
/// Decimal numbers compare by value.
pub fn diff(expected: &[Vec<Option<String>>], actual: &[Vec<Option<String>>]) -> (TextRows, TextRows) {
    let key = |row: &Vec<Option<String>>| row.iter().map(comparable).collect::<Vec<_>>();
    let actual_keys: Vec<Vec<Option<String>>> = actual.iter().map(key).collect();
    let mut remaining: Vec<Option<&Vec<Option<String>>>> = actual_keys.iter().map(Some).collect();
    let mut only_expected = Vec::new();
    for row in expected {
        let row_key = key(row);
        match remaining.iter().position(|r| r.is_some_and(|r| *r == row_key)) {
            Some(i) => remaining[i] = None,
            None => only_expected.push(row.clone()),
        }
    }
    let only_actual =
        remaining.iter().enumerate().filter(|(_, r)| r.is_some()).map(|(i, _)| actual[i].clone()).collect();
    (only_expected, only_actual)
}

#[cfg(test)]
mod tests {
    use mdp_warehouse::{DuckDbDialect, PostgresDialect};

    use super::*;

    fn def(yaml: &str) -> Result<UnitTestDef, String> {
        let value: Json = serde_yaml::from_str(yaml).unwrap();
        UnitTestDef::parse(&value, &|name, ext| (name == "tlds" && ext == "csv").then(|| "tld\nexample.com\n".into()))
    }

    #[test]
    fn inputs_are_refs_sources_or_this() {
        assert_eq!(Input::parse("ref('a')"), Some(Input::Ref { package: None, name: "a".into() }));
        assert_eq!(Input::parse(" ref(\"p\", 'a') "), Some(Input::Ref { package: Some("p".into()), name: "a".into() }));
        assert_eq!(Input::parse("source('s','t')"), Some(Input::Source { source: "s".into(), table: "t".into() }));
        assert_eq!(Input::parse("this"), Some(Input::This));
        assert_eq!(Input::parse("ref(a)"), None);
        assert_eq!(Input::parse("var('x')"), None);
    }

    #[test]
    fn a_definition_reads_its_rows_in_each_format() {
        let d = def(r#"
name: t
model: m
given:
  - input: ref('a')
    rows: [{id: 1, ok: true}, {id: 2, name: "x"}]
  - input: source('s', 't')
    format: csv
    rows: |
      id,name
      1,
  - input: ref('tld')
    format: csv
    fixture: tlds
  - input: this
    format: sql
    rows: select 1 as id
expect:
  rows: []
overrides:
  vars: {day: 3}
  macros: {is_incremental: true}
"#)
        .unwrap();
        assert_eq!(d.given[0].rows.columns(), ["id", "ok", "name"]);
        assert_eq!(
            d.given[1].rows,
            Rows::Csv { header: vec!["id".into(), "name".into()], rows: vec![vec![Some("1".into()), None]] }
        );
        assert_eq!(d.given[2].rows.columns(), ["tld"]);
        assert_eq!(d.given[3].rows, Rows::Sql("select 1 as id".into()));
        assert_eq!(d.expect, Rows::Dicts(Vec::new()));
        assert_eq!(d.is_incremental, Some(true));
        assert_eq!(d.vars["day"], 3);
        let err = |y: &str| def(y).unwrap_err();
        assert!(err("name: t\ngiven: []\nexpect: {rows: []}").contains("`model:`"));
        assert!(
            err("name: t\nmodel: m\ngiven: [{input: \"var('x')\", rows: []}]\nexpect: {rows: []}").contains("given #1")
        );
        assert!(err("name: t\nmodel: m\nexpect: {rows: [], format: csv, fixture: nope}")
            .contains("fixture `nope` not found"));
        assert!(err("name: t\nmodel: m\nexpect: {rows: []}\noverrides: {macros: {current_timestamp: x}}")
            .contains("`current_timestamp`"));
        assert!(
            err("name: t\nmodel: m\nexpect: {rows: []}\noverrides: {env_vars: {A: b}}").contains("overrides.env_vars")
        );
    }

    #[test]
    fn rows_become_a_typed_query_of_every_column_of_the_input() {
        let rows = Rows::Dicts(vec![
            [("id".to_string(), Json::from(1)), ("ok".to_string(), Json::from(true))].into_iter().collect(),
            [("ID".to_string(), Json::from(2)), ("name".to_string(), Json::from("it's"))].into_iter().collect(),
        ]);
        let columns = |spec: &[(&str, &str)]| -> Vec<ColumnInfo> {
            spec.iter()
                .map(|(n, t)| ColumnInfo { name: n.to_string(), data_type: t.to_string(), nullable: true })
                .collect()
        };
        let cols = columns(&[("id", "integer"), ("name", "text"), ("ok", "boolean"), ("amount", "numeric")]);
        assert_eq!(
            rows_sql(&PostgresDialect, &rows, &cols).unwrap(),
            "select cast('1' as integer) as \"id\", cast(NULL as text) as \"name\", cast('true' as boolean) as \"ok\", \
             cast(NULL as numeric) as \"amount\"\nunion all\n\
             select cast('2' as integer) as \"id\", cast('it''s' as text) as \"name\", cast(NULL as boolean) as \"ok\", \
             cast(NULL as numeric) as \"amount\""
        );
        assert_eq!(
            rows_sql(&DuckDbDialect, &rows, &[]).unwrap(),
            "select 1 as \"id\", true as \"ok\", NULL as \"name\"\nunion all\nselect 2 as \"id\", NULL as \"ok\", 'it''s' as \"name\""
        );
        assert_eq!(
            rows_sql(&DuckDbDialect, &Rows::Dicts(Vec::new()), &columns(&[("id", "INTEGER")])).unwrap(),
            "select cast(NULL as INTEGER) as \"id\" where 1 = 0"
        );
    }

    #[test]
    fn the_comparison_is_of_multisets() {
        let r = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
        let (missing, extra) = diff(&[r(&["1"]), r(&["1"]), r(&["2"])], &[r(&["2"]), r(&["1"]), r(&["3"])]);
        assert_eq!(missing, [r(&["1"])], "a row expected twice must be there twice");
        assert_eq!(extra, [r(&["3"])]);
        assert_eq!(diff(&[r(&["a"]), r(&["b"])], &[r(&["b"]), r(&["a"])]), (vec![], vec![]), "order does not matter");
        assert_eq!(diff(&[r(&["15.00", "10"])], &[r(&["15.0", "10"])]), (vec![], vec![]), "numbers by value");
        assert_eq!(diff(&[r(&["1.50"])], &[r(&["1.5"])]).0.len(), 0);
        assert_eq!(diff(&[r(&["100"])], &[r(&["1"])]).0.len(), 1, "integers keep their zeros");
        assert_eq!(diff(&[r(&["a.0"])], &[r(&["a"])]).0.len(), 1, "text is text");
    }
}
