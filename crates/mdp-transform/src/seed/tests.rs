//! Reading whole seeds: inference, values per dialect, errors, batching.

use super::*;
use arrow::array::{
    Array, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::TimeUnit;
use std::io::Write as _;

fn file(content: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".csv").tempfile().expect("temp file");
    f.write_all(content).expect("write seed");
    f
}

fn read_with(content: &str, dialect: SeedCsv, overrides: &[(&str, &str)]) -> Result<SeedData, SeedError> {
    let f = file(content.as_bytes());
    let types: IndexMap<String, String> = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    read_seed(f.path(), None, b',', &types, dialect)
}

fn read(content: &str, dialect: SeedCsv) -> SeedData {
    read_with(content, dialect, &[]).expect("seed reads")
}

/// (sql type, arrow type) of every column.
fn types(data: &SeedData) -> Vec<(&str, DataType)> {
    data.columns.iter().map(|c| (c.sql_type.as_str(), c.arrow_type.clone())).collect()
}

fn sql_types(content: &str) -> Vec<String> {
    read(content, SeedCsv::DuckDb).columns.into_iter().map(|c| c.sql_type).collect()
}

/// Column `i` over all batches, each value rendered (`None` for NULL).
fn values(data: &SeedData, i: usize) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for batch in &data.batches {
        let a = batch.column(i);
        for row in 0..a.len() {
            if a.is_null(row) {
                out.push(None);
                continue;
            }
            let any = a.as_any();
            let v = match a.data_type() {
                DataType::Utf8 => any.downcast_ref::<StringArray>().unwrap().value(row).to_string(),
                DataType::Int32 => any.downcast_ref::<Int32Array>().unwrap().value(row).to_string(),
                DataType::Int64 => any.downcast_ref::<Int64Array>().unwrap().value(row).to_string(),
                DataType::Float64 => format!("{:?}", any.downcast_ref::<Float64Array>().unwrap().value(row)),
                DataType::Boolean => any.downcast_ref::<BooleanArray>().unwrap().value(row).to_string(),
                DataType::Date32 => any.downcast_ref::<Date32Array>().unwrap().value_as_date(row).unwrap().to_string(),
                DataType::Timestamp(TimeUnit::Microsecond, None) => {
                    any.downcast_ref::<TimestampMicrosecondArray>().unwrap().value_as_datetime(row).unwrap().to_string()
                }
                other => panic!("unexpected type {other}"),
            };
            out.push(Some(v));
        }
    }
    out
}

fn vals(items: &[Option<&str>]) -> Vec<Option<String>> {
    items.iter().map(|v| v.map(str::to_string)).collect()
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

#[test]
fn integers_are_32_bit_integer() {
    let data = read("v\n1\n2\n-3\n007\n+5\n 6 \n1_000\n", SeedCsv::DuckDb);
    assert_eq!(types(&data), vec![("integer", DataType::Int32)]);
    assert!(!data.columns[0].cast_needed);
    assert_eq!(
        values(&data, 0),
        vals(&[Some("1"), Some("2"), Some("-3"), Some("7"), Some("5"), Some("6"), Some("1000")])
    );
}

#[test]
fn integral_decimals_and_exponents_are_integer() {
    // agate normalises the Decimal before counting places: 1.0, 2.00 and 1e3 have none.
    let data = read("v\n1.0\n2.00\n3\n1e3\n2E2\n-0\n", SeedCsv::DuckDb);
    assert_eq!(types(&data), vec![("integer", DataType::Int32)]);
    assert_eq!(values(&data, 0), vals(&[Some("1"), Some("2"), Some("3"), Some("1000"), Some("200"), Some("0")]));
    // More than 28 significant digits are rounded away, as Python's decimal context does.
    assert_eq!(sql_types("v\n1.00000000000000000000000000001\n"), vec!["integer"]);
}

#[test]
fn any_decimal_makes_float8() {
    let data = read("v\n1.5\n2\n-0.25\n1e-2\n", SeedCsv::DuckDb);
    assert_eq!(types(&data), vec![("float8", DataType::Float64)]);
    assert_eq!(values(&data, 0), vals(&[Some("1.5"), Some("2.0"), Some("-0.25"), Some("0.01")]));
}

#[test]
fn agate_number_formats() {
    // Currency symbols, percent signs and `,` grouping are stripped (dbt-postgres loads these values).
    let data = read("v\n\"$1,000\"\n5%\n-$3\n\"1,2,3\"\n€5€\n--5\n", SeedCsv::Agate);
    assert_eq!(types(&data), vec![("integer", DataType::Int32)]);
    assert_eq!(values(&data, 0), vals(&[Some("1000"), Some("5"), Some("-3"), Some("123"), Some("5"), Some("5")]));
    assert_eq!(sql_types("v\n\"1,234.5\"\n"), vec!["float8"]);
    // Not numbers.
    assert_eq!(sql_types("v\n(5)\n"), vec!["text"]);
    assert_eq!(sql_types("v\n-%5\n"), vec!["text"]);
    assert_eq!(sql_types("v\n+-5\n"), vec!["text"]);
    assert_eq!(sql_types("v\nsNaN\n"), vec!["text"]);
    assert_eq!(sql_types("v\n1 000\n"), vec!["text"]);
}

#[test]
fn wide_integers_widen_instead_of_failing() {
    // dbt-core creates `integer` and the load fails; we keep the values.
    let data = read("v\n3000000000\n1\n", SeedCsv::DuckDb);
    assert_eq!(types(&data), vec![("bigint", DataType::Int64)]);
    assert_eq!(values(&data, 0), vals(&[Some("3000000000"), Some("1")]));
    assert_eq!(sql_types("v\n-2147483648\n2147483647\n"), vec!["integer"]);
    assert_eq!(sql_types("v\n2147483648\n"), vec!["bigint"]);
    assert_eq!(sql_types("v\n100000000000000000000\n"), vec!["float8"]);
}

#[test]
fn non_finite_numbers() {
    let content = "v\n1.5\nnan\ninf\n-Infinity\n";
    let duck = read(content, SeedCsv::DuckDb);
    assert_eq!(types(&duck), vec![("float8", DataType::Float64)]);
    assert_eq!(values(&duck, 0), vals(&[Some("1.5"), Some("NaN"), Some("inf"), Some("-inf")]));
    // psycopg2 sends every non-finite Decimal as 'NaN'.
    let pg = read(content, SeedCsv::Agate);
    assert_eq!(values(&pg, 0), vals(&[Some("1.5"), Some("NaN"), Some("NaN"), Some("NaN")]));
}

#[test]
fn booleans_are_only_true_and_false() {
    let data = read("v\ntrue\nFalse\nTRUE\n\n", SeedCsv::Agate);
    assert_eq!(types(&data), vec![("boolean", DataType::Boolean)]);
    assert_eq!(values(&data, 0), vals(&[Some("true"), Some("false"), Some("true"), None]));
    assert_eq!(sql_types("v\n1\n0\n"), vec!["integer"]);
    assert_eq!(sql_types("v\nyes\nno\n"), vec!["text"]);
    assert_eq!(sql_types("v\nt\nf\n"), vec!["text"]);
    // agate removes commas before matching.
    let data = read("v\n\"t,rue\"\n\",\"\n", SeedCsv::Agate);
    assert_eq!(values(&data, 0), vals(&[Some("true"), None]));
}

#[test]
fn dates() {
    let data = read("v\n2020-01-05\n2020-1-6\n 2021-12-31 \n2020-01- 7\nnull\n", SeedCsv::DuckDb);
    assert_eq!(types(&data), vec![("date", DataType::Date32)]);
    assert_eq!(
        values(&data, 0),
        vals(&[Some("2020-01-05"), Some("2020-01-06"), Some("2021-12-31"), Some("2020-01-07"), None])
    );
    for text in ["2020/01/05", "2020-02-30", "0000-01-01", "2020-13-01", "20-01-01", "2020-01-05x"] {
        assert_eq!(sql_types(&format!("v\n{text}\n")), vec!["text"], "{text}");
    }
}

#[test]
fn datetimes_with_dbt_format() {
    let data =
        read("v\n2020-01-05 10:00:00\n2020-01-06 11:30:15\n2020-01-07 0:0:0\n2020-01-08\t1:2:3\n", SeedCsv::DuckDb);
    assert_eq!(types(&data), vec![("timestamp without time zone", ts())]);
    assert_eq!(
        values(&data, 0),
        vals(&[
            Some("2020-01-05 10:00:00"),
            Some("2020-01-06 11:30:15"),
            Some("2020-01-07 00:00:00"),
            Some("2020-01-08 01:02:03")
        ])
    );
    // No fractional seconds in dbt's format, and a space-separated value is not ISO 8601.
    assert_eq!(sql_types("v\n2020-01-05 10:00:00.5\n"), vec!["text"]);
    assert_eq!(sql_types("v\n2020-01-05 10:00:60\n"), vec!["text"]);
    assert_eq!(sql_types("v\n2020-01-05 24:00:00\n"), vec!["text"]);
    assert_eq!(sql_types("v\n10:00:00\n"), vec!["text"]);
}

#[test]
fn iso_datetimes() {
    let data = read(
        "v\n2020-01-05T10:00:00\n2020-01-06T11:30:15.1234567\n2020-01-07T00:00\n20200105T100000\n2020-01-05T10\n",
        SeedCsv::Agate,
    );
    assert_eq!(types(&data), vec![("timestamp without time zone", ts())]);
    assert_eq!(
        values(&data, 0),
        vals(&[
            Some("2020-01-05 10:00:00"),
            Some("2020-01-06 11:30:15.123456"),
            Some("2020-01-07 00:00:00"),
            Some("2020-01-05 10:00:00"),
            Some("2020-01-05 10:00:00")
        ])
    );
}

#[test]
fn iso_offsets_per_dialect() {
    let content = "v\n2020-01-05T10:00:00Z\n2020-01-05T10:00:00+02:00\n2020-01-05T1000-0530\n";
    // dbt-duckdb's COPY keeps the wall-clock time.
    let duck = read(content, SeedCsv::DuckDb);
    assert_eq!(
        values(&duck, 0),
        vals(&[Some("2020-01-05 10:00:00"), Some("2020-01-05 10:00:00"), Some("2020-01-05 10:00:00")])
    );
    // Postgres converts the timestamptz to UTC.
    let pg = read(content, SeedCsv::Agate);
    assert_eq!(
        values(&pg, 0),
        vals(&[Some("2020-01-05 10:00:00"), Some("2020-01-05 08:00:00"), Some("2020-01-05 15:30:00")])
    );
}

#[test]
fn mixed_columns_fall_back_to_text() {
    let data = read(
        "a,b,c,d\n1,2020-01-05,true,2020-01-05T10:00:00\na,2020-01-05 10:00:00,1,2020-01-05 10:00:00\n",
        SeedCsv::DuckDb,
    );
    assert_eq!(
        types(&data),
        vec![("text", DataType::Utf8), ("text", DataType::Utf8), ("text", DataType::Utf8), ("text", DataType::Utf8)]
    );
    assert_eq!(values(&data, 0), vals(&[Some("1"), Some("a")]));
    assert_eq!(sql_types("v\n1\na\n2.5\n"), vec!["text"]);
}

#[test]
fn nulls_do_not_decide_the_type() {
    let data = read("v,w,x\n1,,\n,null,\n3,,\n", SeedCsv::Agate);
    // An all-NULL column is agate Number without decimals: `integer`.
    assert_eq!(types(&data), vec![("integer", DataType::Int32); 3]);
    assert_eq!(values(&data, 0), vals(&[Some("1"), None, Some("3")]));
    assert_eq!(values(&data, 1), vals(&[None, None, None]));
}

#[test]
fn text_nulls_per_dialect() {
    let content = "v\nabc\n\" spaced \"\n  \n\n\"\"\nnull\nNULL\n Null \n";
    // DuckDB's CSV reader: only empty fields are NULL.
    let duck = read(content, SeedCsv::DuckDb);
    assert_eq!(types(&duck), vec![("text", DataType::Utf8)]);
    // The blank line of a one-column file is an empty field.
    assert_eq!(
        values(&duck, 0),
        vals(&[Some("abc"), Some(" spaced "), Some("  "), None, None, Some("null"), Some("NULL"), Some(" Null ")])
    );
    // agate: empty or `null` after strip and lower; the blank line is a row of NULLs.
    let pg = read(content, SeedCsv::Agate);
    assert_eq!(values(&pg, 0), vals(&[Some("abc"), Some(" spaced "), None, None, None, None, None, None]));
}

#[test]
fn column_types_override() {
    let content = "a,b,c,d\nx,5,1.234,2020-01-05\ny,,null,\n";
    let f = file(content.as_bytes());
    let mut types_config = IndexMap::new();
    types_config.insert("a".to_string(), "varchar(10)".to_string());
    types_config.insert("c".to_string(), "numeric(10,2)".to_string());
    types_config.insert("missing".to_string(), "int".to_string());
    let pg = read_seed(f.path(), None, b',', &types_config, SeedCsv::Agate).unwrap();
    assert_eq!(
        pg.columns,
        vec![
            SeedColumn {
                name: "a".into(),
                arrow_type: DataType::Utf8,
                sql_type: "varchar(10)".into(),
                cast_needed: true
            },
            SeedColumn {
                name: "b".into(),
                arrow_type: DataType::Int32,
                sql_type: "integer".into(),
                cast_needed: false
            },
            SeedColumn {
                name: "c".into(),
                arrow_type: DataType::Utf8,
                sql_type: "numeric(10,2)".into(),
                cast_needed: true
            },
            SeedColumn { name: "d".into(), arrow_type: DataType::Date32, sql_type: "date".into(), cast_needed: false },
        ]
    );
    assert_eq!(values(&pg, 2), vals(&[Some("1.234"), None]));
    let duck = read_seed(f.path(), None, b',', &types_config, SeedCsv::DuckDb).unwrap();
    assert_eq!(values(&duck, 2), vals(&[Some("1.234"), Some("null")]));
    // A forced column is text even when every value is a number.
    let data = read_with("a\n1\n2\n", SeedCsv::DuckDb, &[("a", "bigint")]).unwrap();
    assert_eq!(types(&data), vec![("bigint", DataType::Utf8)]);
    assert_eq!(values(&data, 0), vals(&[Some("1"), Some("2")]));
}

#[test]
fn ragged_rows_name_the_line() {
    let err = read_with("a,b\n1,2\n3\n", SeedCsv::DuckDb, &[]).unwrap_err();
    let SeedError::FieldCount { line, expected, found, .. } = &err else { panic!("{err}") };
    assert_eq!((*line, *expected, *found), (3, 2, 1));
    let message = err.to_string();
    assert!(message.contains(", line 3:") && message.contains("column \"b\" has no value"), "{message}");

    let err = read_with("a,b\n1,2\n\n\"x\ny\",2\n4,5,6\n", SeedCsv::Agate, &[]).unwrap_err();
    let SeedError::FieldCount { line, found, .. } = &err else { panic!("{err}") };
    assert_eq!((*line, *found), (6, 3));
    assert!(err.to_string().contains("after column \"b\""), "{err}");
}

#[test]
fn bom_is_stripped() {
    let f = file(b"\xef\xbb\xbfid,name\n1,x\n");
    let data = read_seed(f.path(), None, b',', &IndexMap::new(), SeedCsv::DuckDb).unwrap();
    assert_eq!(data.columns[0].name, "id");
    assert_eq!(types(&data), vec![("integer", DataType::Int32), ("text", DataType::Utf8)]);
    assert_eq!(values(&data, 0), vals(&[Some("1")]));
}

#[test]
fn header_only_has_no_rows() {
    // dbt-core creates `integer` columns for a header-only seed (its Integer type survives with no rows).
    for content in ["a,b\n", "a,b", "a,b\r\n"] {
        let data = read(content, SeedCsv::DuckDb);
        assert_eq!(data.rows, 0);
        assert!(data.batches.is_empty());
        assert_eq!(types(&data), vec![("integer", DataType::Int32), ("integer", DataType::Int32)]);
    }
    let data = read_with("a,b\n", SeedCsv::Agate, &[("b", "text")]).unwrap();
    assert_eq!(types(&data), vec![("integer", DataType::Int32), ("text", DataType::Utf8)]);
}

#[test]
fn empty_file_is_an_error() {
    for content in ["", "\u{feff}", "\n"] {
        let err = read_with(content, SeedCsv::DuckDb, &[]).unwrap_err();
        assert!(matches!(err, SeedError::Empty { .. }), "{err}");
    }
}

#[test]
fn header_names_as_agate_names_them() {
    let data = read("a,a,,B,MyCol,other Col\n1,2,3,4,5,6\n", SeedCsv::DuckDb);
    let names: Vec<&str> = data.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["a", "a_2", "c", "B", "MyCol", "other Col"]);
    assert_eq!(letter_name(27), "bb");
}

#[test]
fn blank_lines_per_dialect() {
    let content = "a,b\n1,2\n\n3,4\n\n";
    let duck = read(content, SeedCsv::DuckDb);
    assert_eq!(duck.rows, 2);
    assert_eq!(values(&duck, 0), vals(&[Some("1"), Some("3")]));
    // dbt-postgres inserts a row of NULLs for each blank line.
    let pg = read(content, SeedCsv::Agate);
    assert_eq!(pg.rows, 4);
    assert_eq!(values(&pg, 1), vals(&[Some("2"), None, Some("4"), None]));
    assert_eq!(types(&pg), vec![("integer", DataType::Int32); 2]);
    // In a one-column file DuckDB reads a blank line as an empty field: NULL.
    let single = "v\n1\n\n2\n\n";
    for dialect in [SeedCsv::DuckDb, SeedCsv::Agate] {
        assert_eq!(values(&read(single, dialect), 0), vals(&[Some("1"), None, Some("2"), None]), "{dialect:?}");
    }
}

#[test]
fn line_breaks_and_quotes() {
    let content = "a,b\r\n1,\"line1\r\nline2\"\r\n2,\"say \"\"hi\"\"\"\r\n3,\"ab\"cd\r\n";
    let duck = read(content, SeedCsv::DuckDb);
    assert_eq!(values(&duck, 1), vals(&[Some("line1\r\nline2"), Some("say \"hi\""), Some("abcd")]));
    // Python reads the file with universal newlines.
    let pg = read(content, SeedCsv::Agate);
    assert_eq!(values(&pg, 1), vals(&[Some("line1\nline2"), Some("say \"hi\""), Some("abcd")]));
    // Lone CR line ends.
    let data = read("a,b\r1,x\r2,y\r", SeedCsv::DuckDb);
    assert_eq!(values(&data, 0), vals(&[Some("1"), Some("2")]));
}

#[test]
fn other_delimiters() {
    let f = file(b"a;b\n1;x,y\n2;z\n");
    let data = read_seed(f.path(), None, b';', &IndexMap::new(), SeedCsv::DuckDb).unwrap();
    assert_eq!(types(&data), vec![("integer", DataType::Int32), ("text", DataType::Utf8)]);
    assert_eq!(values(&data, 1), vals(&[Some("x,y"), Some("z")]));
    let err = read_seed(f.path(), None, b'"', &IndexMap::new(), SeedCsv::DuckDb).unwrap_err();
    assert!(matches!(err, SeedError::Config { .. }), "{err}");
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let f = file(b"a,b\n1,x\n2,\xff\n");
    let err = read_seed(f.path(), None, b',', &IndexMap::new(), SeedCsv::DuckDb).unwrap_err();
    let SeedError::Utf8 { line, column, .. } = &err else { panic!("{err}") };
    assert_eq!((*line, column.as_str()), (3, "\"b\""));
}

#[test]
fn missing_file_is_an_io_error() {
    let err = read_seed(Path::new("/nonexistent/seed.csv"), None, b',', &IndexMap::new(), SeedCsv::DuckDb).unwrap_err();
    assert!(matches!(err, SeedError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/seed.csv"), "{err}");
}

#[test]
fn large_files_are_batched() {
    let mut content = String::from("id,amount,day\n");
    for i in 0..20_000 {
        content.push_str(&format!("{i},{}.5,2020-01-{:02}\n", i % 100, i % 28 + 1));
    }
    let data = read(&content, SeedCsv::Agate);
    assert_eq!(data.rows, 20_000);
    let sizes: Vec<usize> = data.batches.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes, vec![8192, 8192, 3616]);
    assert_eq!(
        types(&data),
        vec![("integer", DataType::Int32), ("float8", DataType::Float64), ("date", DataType::Date32)]
    );
    let ids = values(&data, 0);
    assert_eq!((ids[0].as_deref(), ids[19_999].as_deref()), (Some("0"), Some("19999")));
    assert_eq!(data.batches[0].schema().field(0).name(), "id");
}
