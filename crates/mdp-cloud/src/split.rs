//! Splitting SQL text into statements, for APIs that take one statement per request (Snowflake's
//! query-request, as dbt-snowflake splits client-side; BigQuery's jobs.query outside scripts).
//!
//! A `;` ends a statement unless it is inside a string (`'…'`, with `''` and, as Snowflake and
//! BigQuery read them, backslash escapes), a quoted identifier (`"…"`, or BigQuery's `` `…` `` with
//! backslash escapes), a dollar-quoted
//! body (`$$…$$`, Snowflake's procedure and UDF bodies), or a comment (`-- …` to the end of the line,
//! `/* … */`). Statements that hold nothing but blanks and comments are dropped.

/// The statements of `sql`, trimmed, in order.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut has_code = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' | b'`' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\\' && quote != b'"' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                has_code = true;
                i += 1;
            }
            b'$' if bytes.get(i + 1) == Some(&b'$') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'$' && bytes[i + 1] == b'$') {
                    i += 1;
                }
                has_code = true;
                i += 2;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b';' => {
                if has_code {
                    out.push(sql[start..i].trim());
                }
                start = i + 1;
                has_code = false;
                i += 1;
            }
            c => {
                has_code |= !c.is_ascii_whitespace();
                i += 1;
            }
        }
    }
    if has_code && start < sql.len() {
        out.push(sql[start..].trim());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_statements;

    #[test]
    fn semicolons_end_statements_only_outside_quotes_and_comments() {
        let sql = "create table t (a varchar); -- a comment; not a statement\n\
                   insert into t values ('x;y'), ('it''s;'), ('back\\';slash');\n\
                   select \"odd;name\" from t /* ; */ where a <> 'z'  ;\n\
                   create function f() returns int as $$ select 1; $$;  \n  -- trailing comment only\n";
        assert_eq!(
            split_statements(sql),
            [
                "create table t (a varchar)",
                "-- a comment; not a statement\ninsert into t values ('x;y'), ('it''s;'), ('back\\';slash')",
                "select \"odd;name\" from t /* ; */ where a <> 'z'",
                "create function f() returns int as $$ select 1; $$",
            ]
        );
    }

    #[test]
    fn blank_and_comment_only_text_holds_no_statement() {
        assert!(split_statements("  ;; -- nothing\n /* at all */ ;").is_empty());
        assert_eq!(split_statements("select 1"), ["select 1"]);
    }

    #[test]
    fn bigquery_backquoted_names_may_escape_their_quote() {
        assert_eq!(split_statements("select 1 as `a\\`;b`; select 2"), ["select 1 as `a\\`;b`", "select 2"]);
    }
}
