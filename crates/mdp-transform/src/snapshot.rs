//! Snapshots, as dbt-core 1.10 defines them: `{% snapshot name %} … {% endsnapshot %}` blocks in
//! the snapshot paths, configured with `strategy` (`timestamp` with `updated_at`, or `check` with
//! `check_cols`), `unique_key`, `hard_deletes` (or the older `invalidate_hard_deletes`),
//! `snapshot_meta_column_names`, `dbt_valid_to_current`, and `target_schema` / `target_database`.
//!
//! This module reads the blocks out of a file and the config into a [`SnapshotSpec`] (at parse,
//! so a misconfigured snapshot fails there with its file); [`crate::materialization::snapshot`]
//! plans the statements from it.

use serde_json::Value as Json;

use crate::config::NodeConfig;

/// One `{% snapshot name %}` block of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotBlock {
    pub name: String,
    /// Byte range of the block's body (between the tags).
    pub body: std::ops::Range<usize>,
    /// 1-based line of the opening tag.
    pub line: usize,
}

/// The `{% snapshot %}` blocks of `text`, in order. An opening tag without `{% endsnapshot %}`
/// is an error naming its line.
pub fn blocks(text: &str) -> Result<Vec<SnapshotBlock>, String> {
    let mut out = Vec::new();
    let mut offset = 0;
    while let Some((start, end, tag)) = next_tag(text, offset) {
        offset = end;
        let Some(name) = tag.strip_prefix("snapshot") else { continue };
        if !name.starts_with(char::is_whitespace) {
            continue;
        }
        let name = name.trim();
        let line = text[..start].matches('\n').count() + 1;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("line {line}: `{{% snapshot {name} %}}` needs a name of letters, digits and _"));
        }
        let body_start = end;
        loop {
            let Some((s, e, t)) = next_tag(text, offset) else {
                return Err(format!("line {line}: `{{% snapshot {name} %}}` has no `{{% endsnapshot %}}`"));
            };
            offset = e;
            if t == "endsnapshot" {
                out.push(SnapshotBlock { name: name.to_string(), body: body_start..s, line });
                break;
            }
        }
    }
    Ok(out)
}

/// The next `{% … %}` tag at or after `from`: (start, end, trimmed contents).
fn next_tag(text: &str, from: usize) -> Option<(usize, usize, &str)> {
    let start = text[from..].find("{%")? + from;
    let end = text[start..].find("%}")? + start + 2;
    let inner = text[start + 2..end - 2].trim_matches('-').trim_matches('+').trim();
    Some((start, end, inner))
}

/// The template a block's body renders from: the file with everything outside the body blanked
/// (newlines kept), so errors name the file's own lines.
pub fn body_template(text: &str, block: &SnapshotBlock) -> String {
    let before = text[..block.body.start].matches('\n').count();
    let mut out = "\n".repeat(before);
    out.push_str(&text[block.body.clone()]);
    out
}

/// How a snapshot decides that a row changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// A newer `updated_at` than the current version's `dbt_valid_from`.
    Timestamp { updated_at: String },
    /// A difference in `check_cols` (or in any column); the time recorded is `updated_at` when
    /// configured, else the time of the run.
    Check { cols: CheckCols, updated_at: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckCols {
    All,
    These(Vec<String>),
}

/// What happens to a current row whose key left the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardDeletes {
    /// Nothing: it stays current.
    Ignore,
    /// Its `dbt_valid_to` is set to the time of the run.
    Invalidate,
    /// As `invalidate`, and a new version with `dbt_is_deleted = 'True'` is added.
    NewRecord,
}

/// The names of the columns a snapshot adds (`snapshot_meta_column_names`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaColumns {
    pub scd_id: String,
    pub updated_at: String,
    pub valid_from: String,
    pub valid_to: String,
    pub is_deleted: String,
}

impl Default for MetaColumns {
    fn default() -> Self {
        MetaColumns {
            scd_id: "dbt_scd_id".into(),
            updated_at: "dbt_updated_at".into(),
            valid_from: "dbt_valid_from".into(),
            valid_to: "dbt_valid_to".into(),
            is_deleted: "dbt_is_deleted".into(),
        }
    }
}

/// A snapshot's configuration, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSpec {
    pub strategy: Strategy,
    /// Key expressions, as written.
    pub unique_key: Vec<String>,
    pub hard_deletes: HardDeletes,
    pub columns: MetaColumns,
    /// `dbt_valid_to_current`: the SQL expression current rows carry in `dbt_valid_to` instead of NULL.
    pub valid_to_current: Option<String>,
}

impl SnapshotSpec {
    /// Read and check the snapshot configs of `config`; the error says which config and what to set.
    pub fn of(config: &NodeConfig) -> Result<Self, String> {
        let get = |key: &str| config.extra.get(key).filter(|v| !v.is_null());
        let text = |key: &str| -> Result<Option<String>, String> {
            match get(key) {
                None => Ok(None),
                Some(Json::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                Some(other) => Err(format!("config `{key}` must be a non-empty string, not {other}")),
            }
        };
        if config.unique_key.is_empty() || config.unique_key.iter().any(|k| k.trim().is_empty()) {
            return Err("a snapshot needs a `unique_key` config (a column, an expression or a list of them)".into());
        }
        let updated_at = text("updated_at")?;
        let strategy = match text("strategy")?.as_deref() {
            Some("timestamp") => Strategy::Timestamp {
                updated_at: updated_at
                    .ok_or("the `timestamp` strategy needs an `updated_at` config: the column that says when a row changed")?,
            },
            Some("check") => {
                let cols = match get("check_cols") {
                    Some(Json::String(s)) if s == "all" => CheckCols::All,
                    Some(Json::Array(items)) if !items.is_empty() => CheckCols::These(
                        items
                            .iter()
                            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| format!("check_cols entry {v} is not a column name")))
                            .collect::<Result<_, _>>()?,
                    ),
                    None => return Err("the `check` strategy needs a `check_cols` config: `all` or a list of columns".into()),
                    Some(other) => return Err(format!("invalid value for `check_cols`: {other}; expected `all` or a list of columns")),
                };
                Strategy::Check { cols, updated_at }
            }
            Some(other) if other.contains('.') || other.starts_with("snapshot_") => {
                return Err(format!(
                    "snapshot strategy `{other}`: custom strategy macros are not supported by mdp; use `timestamp` or `check`"
                ))
            }
            Some(other) => return Err(format!("unknown snapshot strategy `{other}`; expected `timestamp` or `check`")),
            None => return Err("a snapshot needs a `strategy` config: `timestamp` or `check`".into()),
        };
        let legacy = get("invalidate_hard_deletes");
        let hard = text("hard_deletes")?;
        if legacy.is_some() && hard.is_some() {
            return Err("set `hard_deletes` or `invalidate_hard_deletes`, not both (dbt refuses both too)".into());
        }
        let hard_deletes = match (legacy, hard.as_deref()) {
            (Some(Json::Bool(true)), _) | (_, Some("invalidate")) => HardDeletes::Invalidate,
            (_, Some("new_record")) => HardDeletes::NewRecord,
            (_, None | Some("ignore")) => HardDeletes::Ignore,
            (_, Some(other)) => {
                return Err(format!(
                    "invalid `hard_deletes` value `{other}`; expected ignore, invalidate or new_record"
                ))
            }
        };
        let mut columns = MetaColumns::default();
        if let Some(names) = get("snapshot_meta_column_names") {
            let Json::Object(names) = names else {
                return Err("`snapshot_meta_column_names` must be a mapping like {dbt_valid_from: valid_from}".into());
            };
            for (key, value) in names {
                let Some(name) = value.as_str().map(str::trim).filter(|n| is_identifier(n)) else {
                    return Err(format!("snapshot_meta_column_names.{key}: {value} is not a column name"));
                };
                let slot = match key.as_str() {
                    "dbt_scd_id" => &mut columns.scd_id,
                    "dbt_updated_at" => &mut columns.updated_at,
                    "dbt_valid_from" => &mut columns.valid_from,
                    "dbt_valid_to" => &mut columns.valid_to,
                    "dbt_is_deleted" => &mut columns.is_deleted,
                    other => {
                        return Err(format!(
                            "snapshot_meta_column_names: unknown key `{other}`; expected dbt_scd_id, dbt_updated_at, \
                             dbt_valid_from, dbt_valid_to or dbt_is_deleted"
                        ))
                    }
                };
                *slot = name.to_string();
            }
        }
        Ok(SnapshotSpec {
            strategy,
            unique_key: config.unique_key.iter().map(|k| k.trim().to_string()).collect(),
            hard_deletes,
            columns,
            valid_to_current: text("dbt_valid_to_current")?,
        })
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `target_schema` / `target_database`: where dbt puts a snapshot when set (verbatim, no
/// `generate_schema_name`).
pub fn target_override(config: &NodeConfig, key: &str) -> Option<String> {
    config.extra.get(key).and_then(Json::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pairs: &[(&str, Json)]) -> Result<SnapshotSpec, String> {
        let mut config = NodeConfig::defaults("snapshot");
        let layer = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        assert!(config.apply(&layer).is_empty());
        SnapshotSpec::of(&config)
    }

    #[test]
    fn blocks_are_found_with_their_lines() {
        let text = "-- header\n{% snapshot orders_snap %}\n  select 1\n{% endsnapshot %}\n\n{%- snapshot b -%}x{%- endsnapshot -%}";
        let found = blocks(text).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].name.as_str(), found[0].line), ("orders_snap", 2));
        assert_eq!(&text[found[0].body.clone()], "\n  select 1\n");
        assert_eq!(&text[found[1].body.clone()], "x");
        assert_eq!(body_template(text, &found[0]), "\n\n  select 1\n", "the body keeps its line numbers");
        assert_eq!(
            blocks("{% snapshot s %}\nselect 1").unwrap_err(),
            "line 1: `{% snapshot s %}` has no `{% endsnapshot %}`"
        );
        assert!(blocks("{% snapshots_of_x %}{% snapshotx %}").unwrap().is_empty());
    }

    #[test]
    fn configs_are_checked_with_what_to_set() {
        let ok = spec(&[
            ("strategy", "timestamp".into()),
            ("unique_key", "id".into()),
            ("updated_at", "updated_at".into()),
            ("invalidate_hard_deletes", true.into()),
        ])
        .unwrap();
        assert_eq!(ok.strategy, Strategy::Timestamp { updated_at: "updated_at".into() });
        assert_eq!(ok.hard_deletes, HardDeletes::Invalidate);
        let check = spec(&[
            ("strategy", "check".into()),
            ("unique_key", serde_json::json!(["a", "b"])),
            ("check_cols", serde_json::json!(["x"])),
            ("hard_deletes", "new_record".into()),
            ("snapshot_meta_column_names", serde_json::json!({"dbt_valid_to": "valid_until"})),
        ])
        .unwrap();
        assert_eq!(check.strategy, Strategy::Check { cols: CheckCols::These(vec!["x".into()]), updated_at: None });
        assert_eq!(check.unique_key, ["a", "b"]);
        assert_eq!(check.columns.valid_to, "valid_until");
        assert_eq!(check.columns.valid_from, "dbt_valid_from");

        let err = |pairs: &[(&str, Json)]| spec(pairs).unwrap_err();
        assert!(err(&[("strategy", "timestamp".into())]).contains("needs a `unique_key`"));
        assert!(err(&[("strategy", "timestamp".into()), ("unique_key", "id".into())]).contains("`updated_at` config"));
        assert!(err(&[("strategy", "check".into()), ("unique_key", "id".into())]).contains("`check_cols`"));
        assert!(err(&[("unique_key", "id".into())]).contains("`strategy` config"));
        assert!(err(&[("strategy", "my_pkg.custom".into()), ("unique_key", "id".into())]).contains("custom strategy"));
        assert!(err(&[
            ("strategy", "check".into()),
            ("unique_key", "id".into()),
            ("check_cols", "all".into()),
            ("hard_deletes", "invalidate".into()),
            ("invalidate_hard_deletes", true.into()),
        ])
        .contains("not both"));
        assert!(err(&[
            ("strategy", "check".into()),
            ("unique_key", "id".into()),
            ("check_cols", "all".into()),
            ("hard_deletes", "purge".into()),
        ])
        .contains("ignore, invalidate or new_record"));
    }
}
