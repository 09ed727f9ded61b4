//! `mdp airflow export`: render mdp's DAG as an Apache Airflow DAG file.
//!
//! For teams that schedule with Airflow: each Airflow task is a `BashOperator` that runs the mdp
//! CLI in the project directory with the task's selection (`cd <project> && mdp build --select …`),
//! with the retries, timeouts and schedule of mdp's own DAG. The caller derives the [`ExportDag`]
//! from the project; [`render`] validates it and writes the Python text.
//!
//! The file is plain data for Airflow: no value of the exporting machine's environment is written
//! into it, and the tasks take credentials from the Airflow worker's environment (`append_env=True`).
//!
//! Quoting, from the inside out:
//! - every CLI word is shell-quoted (single quotes, `'\''` for an embedded quote), so `$`, spaces,
//!   quotes, backslashes, globs and newlines reach mdp intact;
//! - the command is then escaped for Jinja, because Airflow renders `bash_command` as a template:
//!   a `{` that would open `{{`, `{%` or `{#` is written `{{ '{' }}`, which renders back to `{`;
//!   a command never ends in `.sh`/`.bash` (such a word is quoted), which Airflow would otherwise
//!   take for the path of a template file;
//! - every Python string is a double-quoted literal with `\` escapes; the file is pure ASCII.
//!
//! The output is deterministic: tasks in the order given (a task group's block sits where its
//! first task is), one `upstream >> downstream` line per edge, edges sorted.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::Datelike;
use serde::Serialize;

/// A DAG to export. Built by the caller from the project.
#[derive(Debug, Clone, Serialize)]
pub struct ExportDag {
    /// Airflow DAG id, e.g. `mdp_my_project__daily`: `[A-Za-z0-9_.-]+`, at most 250 characters.
    pub dag_id: String,
    pub description: String,
    /// A cron expression (or an Airflow preset such as `@daily`); `None` runs only when triggered.
    pub schedule: Option<String>,
    /// IANA time zone of the schedule, e.g. `Europe/Berlin`.
    pub timezone: String,
    pub start_date: chrono::NaiveDate,
    pub catchup: bool,
    /// At least 1.
    pub max_active_runs: u32,
    /// Absolute path of the mdp project; the tasks `cd` there.
    pub project_dir: String,
    /// The mdp executable: a name on the worker's `PATH` (`mdp`) or a path; one word.
    pub mdp_executable: String,
    pub tasks: Vec<ExportTask>,
}

/// One Airflow task: one mdp CLI invocation.
#[derive(Debug, Clone, Serialize)]
pub struct ExportTask {
    /// Airflow task id: `[A-Za-z0-9_.-]+`, at most 250 characters (the caller sanitizes).
    pub task_id: String,
    /// mdp CLI arguments, e.g. `["build", "--select", "stg_google_ads__ad_daily"]`.
    pub args: Vec<String>,
    /// Task ids this task waits for.
    pub upstream: Vec<String>,
    pub retries: u32,
    pub retry_delay_seconds: u64,
    pub retry_exponential_backoff: bool,
    /// `execution_timeout`; `None` for no limit. Must be positive.
    pub timeout_seconds: Option<u64>,
    /// Optional TaskGroup (e.g. `ingest`, `staging`, `marts`): `[A-Za-z0-9_-]+`, at most 200
    /// characters, and not the id of a task.
    pub group: Option<String>,
}

/// Why a DAG cannot be exported. Every task-level error names the task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("invalid DAG id `{dag_id}`: Airflow ids use only letters, digits, `_`, `.` and `-` (1 to 250 characters)")]
    InvalidDagId { dag_id: String },
    #[error(
        "invalid task id `{task_id}`: Airflow task ids use only letters, digits, `_`, `.` and `-` (1 to 250 characters)"
    )]
    InvalidTaskId { task_id: String },
    #[error("duplicate task id `{task_id}`: every task of an Airflow DAG needs its own id")]
    DuplicateTaskId { task_id: String },
    #[error("task `{task_id}` waits for `{upstream}`, which is not a task of the DAG")]
    UnknownUpstream { task_id: String, upstream: String },
    #[error("task `{task_id}` is in a dependency cycle: {}", describe_cycle(.cycle))]
    Cycle {
        task_id: String,
        /// The cycle in "waits for" order, first task repeated at the end: `[a, b, a]`.
        cycle: Vec<String>,
    },
    #[error(
        "task `{task_id}`: invalid task group `{group}`: Airflow group ids use only letters, digits, `_` and `-` (1 to 200 characters)"
    )]
    InvalidGroup { task_id: String, group: String },
    #[error(
        "task `{task_id}`: its task group `{group}` has the id of a task; Airflow needs group and task ids to differ"
    )]
    GroupClash { task_id: String, group: String },
    #[error("task `{task_id}`: {problem}")]
    InvalidTask { task_id: String, problem: String },
    #[error("invalid {field}: {problem}")]
    InvalidSetting { field: &'static str, problem: String },
}

fn describe_cycle(cycle: &[String]) -> String {
    let mut text = String::new();
    for (i, task) in cycle.iter().enumerate() {
        match i {
            0 => text.push_str(&format!("`{task}`")),
            1 => text.push_str(&format!(" waits for `{task}`")),
            _ => text.push_str(&format!(", which waits for `{task}`")),
        }
    }
    text
}

/// Airflow's limit on DAG and task ids (`airflow.utils.helpers.validate_key`).
const MAX_KEY_LEN: usize = 250;
/// Airflow's limit on task group ids (`validate_group_key`).
const MAX_GROUP_KEY_LEN: usize = 200;
/// Python's `timedelta` holds at most 999,999,999 days.
const MAX_TIMEDELTA_SECONDS: u64 = 999_999_999 * 86_400;

fn valid_key(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_KEY_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn valid_group_key(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_GROUP_KEY_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
}

/// Render the Airflow DAG file (Python 3.9+, Airflow 2.4+ and 3) for `dag`.
pub fn render(dag: &ExportDag) -> Result<String, ExportError> {
    let upstream = validate(dag)?;

    let mut out = String::new();
    let mut line = |indent: usize, text: &str| {
        if !text.is_empty() {
            out.push_str(&"    ".repeat(indent));
            out.push_str(text);
        }
        out.push('\n');
    };

    line(0, "# Generated by mdp (`mdp airflow export`). Do not edit this file by hand:");
    line(0, "# run `mdp airflow export` again after changing the project.");
    line(0, "#");
    line(0, &format!("# Airflow DAG `{}`: each task runs the mdp CLI in the project directory.", dag.dag_id));
    line(0, "# The file holds no credentials: the tasks read them from the Airflow worker's environment.");
    line(0, "from __future__ import annotations");
    line(0, "");
    line(0, "from datetime import timedelta");
    line(0, "");
    line(0, "import pendulum");
    line(0, "from airflow import DAG");
    line(0, "");
    line(0, "try:");
    line(1, "from airflow.operators.bash import BashOperator");
    line(0, "except ImportError:  # Airflow 3: the operator lives in the standard provider");
    line(1, "from airflow.providers.standard.operators.bash import BashOperator");
    let grouped = dag.tasks.iter().any(|t| t.group.is_some());
    if grouped {
        line(0, "try:");
        line(1, "from airflow.utils.task_group import TaskGroup");
        line(0, "except ImportError:  # Airflow 3: the task SDK");
        line(1, "from airflow.sdk import TaskGroup");
    }
    line(0, "");
    line(0, "default_args = {");
    line(1, &format!("{}: {},", py_str("owner"), py_str("mdp")));
    line(1, &format!("{}: False,", py_str("depends_on_past")));
    line(0, "}");
    line(0, "");
    line(0, "with DAG(");
    line(1, &format!("dag_id={},", py_str(&dag.dag_id)));
    line(1, &format!("description={},", py_str(&dag.description)));
    line(1, &format!("schedule={},", dag.schedule.as_deref().map_or_else(|| "None".to_string(), py_str)));
    let start = dag.start_date;
    line(
        1,
        &format!(
            "start_date=pendulum.datetime({}, {}, {}, tz={}),",
            start.year(),
            start.month(),
            start.day(),
            py_str(&dag.timezone)
        ),
    );
    line(1, &format!("catchup={},", py_bool(dag.catchup)));
    line(1, &format!("max_active_runs={},", dag.max_active_runs));
    line(1, &format!("tags=[{}],", py_str("mdp")));
    line(1, "default_args=default_args,");
    line(0, ") as dag:");
    line(1, "tasks = {}");

    // Tasks in the given order; a group's tasks all go in one block, placed at its first task
    // (Airflow refuses a second `TaskGroup` with the same id).
    let mut groups_done: HashSet<&str> = HashSet::new();
    for task in &dag.tasks {
        match &task.group {
            None => {
                line(0, "");
                for text in operator_lines(dag, task) {
                    line(1, &text);
                }
            }
            Some(group) => {
                if !groups_done.insert(group.as_str()) {
                    continue;
                }
                line(0, "");
                line(1, &format!("with TaskGroup(group_id={}, prefix_group_id=False):", py_str(group)));
                for member in dag.tasks.iter().filter(|t| t.group.as_deref() == Some(group.as_str())) {
                    for text in operator_lines(dag, member) {
                        line(2, &text);
                    }
                }
            }
        }
    }

    let mut edges: Vec<(&str, &str)> = Vec::new();
    for (task, deps) in dag.tasks.iter().zip(&upstream) {
        for &dep in deps {
            edges.push((dag.tasks[dep].task_id.as_str(), task.task_id.as_str()));
        }
    }
    edges.sort_unstable();
    edges.dedup();
    if !edges.is_empty() {
        line(0, "");
        for (up, down) in edges {
            line(1, &format!("tasks[{}] >> tasks[{}]", py_str(up), py_str(down)));
        }
    }
    Ok(out)
}

/// The lines of one `tasks["id"] = BashOperator(...)` statement, unindented.
fn operator_lines(dag: &ExportDag, task: &ExportTask) -> Vec<String> {
    let command = jinja_escape(&bash_command(dag, task));
    vec![
        format!("tasks[{}] = BashOperator(", py_str(&task.task_id)),
        format!("    task_id={},", py_str(&task.task_id)),
        format!("    bash_command={},", py_str(&command)),
        "    env={},".to_string(),
        "    append_env=True,".to_string(),
        format!("    retries={},", task.retries),
        format!("    retry_delay=timedelta(seconds={}),", task.retry_delay_seconds),
        format!("    retry_exponential_backoff={},", py_bool(task.retry_exponential_backoff)),
        format!(
            "    execution_timeout={},",
            task.timeout_seconds.map_or_else(|| "None".to_string(), |s| format!("timedelta(seconds={s})"))
        ),
        ")".to_string(),
    ]
}

/// `cd <project_dir> && <mdp> <args...>`, every word shell-quoted (before Jinja escaping).
fn bash_command(dag: &ExportDag, task: &ExportTask) -> String {
    let mut command = format!("cd {} && {}", sh_word(&dag.project_dir), sh_command_word(&dag.mdp_executable));
    for arg in &task.args {
        command.push(' ');
        command.push_str(&sh_word(arg));
    }
    command
}

/// Check the DAG; return, per task, the indices of the tasks it waits for (deduplicated, in the
/// order given).
fn validate(dag: &ExportDag) -> Result<Vec<Vec<usize>>, ExportError> {
    if !valid_key(&dag.dag_id) {
        return Err(ExportError::InvalidDagId { dag_id: dag.dag_id.clone() });
    }
    if let Some(schedule) = &dag.schedule {
        if schedule.trim().is_empty() {
            return Err(setting("schedule", "empty; use None for a DAG that runs only when triggered"));
        }
    }
    if dag.timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(setting("timezone", format!("`{}` is not an IANA time zone", dag.timezone)));
    }
    if dag.max_active_runs == 0 {
        return Err(setting("max_active_runs", "must be at least 1"));
    }
    if !dag.project_dir.starts_with('/') {
        return Err(setting(
            "project_dir",
            format!("`{}` is not an absolute path (the tasks run in a temporary directory)", dag.project_dir),
        ));
    }
    if dag.project_dir.contains('\0') {
        return Err(setting("project_dir", "contains a NUL character"));
    }
    if dag.mdp_executable.is_empty() || dag.mdp_executable.contains('\0') {
        return Err(setting("mdp_executable", "empty or contains a NUL character"));
    }

    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, task) in dag.tasks.iter().enumerate() {
        if !valid_key(&task.task_id) {
            return Err(ExportError::InvalidTaskId { task_id: task.task_id.clone() });
        }
        if index.insert(task.task_id.as_str(), i).is_some() {
            return Err(ExportError::DuplicateTaskId { task_id: task.task_id.clone() });
        }
    }
    for task in &dag.tasks {
        let invalid = |problem: String| ExportError::InvalidTask { task_id: task.task_id.clone(), problem };
        if let Some(position) = task.args.iter().position(|a| a.contains('\0')) {
            return Err(invalid(format!("argument {} contains a NUL character", position + 1)));
        }
        if task.retry_delay_seconds > MAX_TIMEDELTA_SECONDS {
            return Err(invalid(format!("retry delay of {} s is too long", task.retry_delay_seconds)));
        }
        match task.timeout_seconds {
            // Airflow treats a zero `execution_timeout` as no timeout at all.
            Some(0) => return Err(invalid("timeout must be positive (use None for no timeout)".to_string())),
            Some(s) if s > MAX_TIMEDELTA_SECONDS => return Err(invalid(format!("timeout of {s} s is too long"))),
            _ => {}
        }
        if let Some(group) = &task.group {
            if !valid_group_key(group) {
                return Err(ExportError::InvalidGroup { task_id: task.task_id.clone(), group: group.clone() });
            }
            if index.contains_key(group.as_str()) {
                return Err(ExportError::GroupClash { task_id: task.task_id.clone(), group: group.clone() });
            }
        }
    }

    let mut upstream: Vec<Vec<usize>> = Vec::with_capacity(dag.tasks.len());
    for task in &dag.tasks {
        let mut deps = Vec::new();
        let mut seen = BTreeSet::new();
        for id in &task.upstream {
            let Some(&dep) = index.get(id.as_str()) else {
                return Err(ExportError::UnknownUpstream { task_id: task.task_id.clone(), upstream: id.clone() });
            };
            if seen.insert(dep) {
                deps.push(dep);
            }
        }
        upstream.push(deps);
    }

    if let Some(cycle) = find_cycle(&upstream) {
        let cycle: Vec<String> = cycle.into_iter().map(|i| dag.tasks[i].task_id.clone()).collect();
        return Err(ExportError::Cycle { task_id: cycle[0].clone(), cycle });
    }
    Ok(upstream)
}

fn setting(field: &'static str, problem: impl Into<String>) -> ExportError {
    ExportError::InvalidSetting { field, problem: problem.into() }
}

/// A cycle of the "waits for" graph, if any, as task indices with the first repeated at the end.
/// Iterative depth-first search (deep chains must not overflow the stack), deterministic.
fn find_cycle(upstream: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; upstream.len()];
    for root in 0..upstream.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // (task, next upstream edge to follow)
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            if let Some(&dep) = upstream[node].get(*next) {
                *next += 1;
                match mark[dep] {
                    Mark::New => {
                        mark[dep] = Mark::OnPath;
                        path.push((dep, 0));
                    }
                    Mark::OnPath => {
                        let start = path.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                        let mut cycle: Vec<usize> = path[start..].iter().map(|&(n, _)| n).collect();
                        cycle.push(dep);
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                path.pop();
            }
        }
    }
    None
}

/// A Python string literal: double quotes, backslash escapes; ASCII only (anything else escaped).
fn py_str(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xff => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if u32::from(c) <= 0xffff => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

fn py_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

/// Characters a shell argument may hold without quotes.
fn sh_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b)
}

/// One shell word: as is when plainly safe, otherwise in single quotes (`'\''` for a quote).
/// A word ending in `.sh`/`.bash` is quoted too, so the command never ends with those suffixes.
fn sh_word(word: &str) -> String {
    let plain = !word.is_empty() && word.bytes().all(sh_plain) && !word.ends_with(".sh") && !word.ends_with(".bash");
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Words the shell reads as syntax when they come first in a command.
const SH_RESERVED: &[&str] = &[
    "case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in", "select", "then",
    "time", "until", "while",
];

/// The command word: quoted also when it would read as an assignment (`a=b`), a job spec (`%1`)
/// or a reserved word.
fn sh_command_word(word: &str) -> String {
    if word.contains(['=', '%']) || SH_RESERVED.contains(&word) {
        format!("'{}'", word.replace('\'', r"'\''"))
    } else {
        sh_word(word)
    }
}

/// Escape text for Airflow's Jinja rendering of `bash_command`: a `{` that would open `{{`, `{%`
/// or `{#` becomes `{{ '{' }}`, which renders to `{`. Everything else is literal to Jinja.
fn jinja_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '{' && matches!(chars.peek(), Some('{' | '%' | '#')) {
            out.push_str("{{ '{' }}");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    fn python3() -> Option<&'static str> {
        match Command::new("python3").arg("--version").output() {
            Ok(out) if out.status.success() => Some("python3"),
            _ => None,
        }
    }

    fn skip_without_python(what: &str) -> bool {
        if python3().is_none() {
            // `.ci/run` sets this when it installed Airflow (and so has Python): never skip there.
            assert!(
                std::env::var("MDP_TEST_REQUIRE_AIRFLOW").as_deref() != Ok("1"),
                "MDP_TEST_REQUIRE_AIRFLOW=1 but python3 cannot run, so the {what} check cannot run"
            );
            eprintln!("NOTICE: python3 not found; skipping the {what} check");
            return true;
        }
        false
    }

    fn s(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn task(task_id: &str, args: &[&str], upstream: &[&str], group: Option<&str>) -> ExportTask {
        ExportTask {
            task_id: task_id.to_string(),
            args: s(args),
            upstream: s(upstream),
            retries: 2,
            retry_delay_seconds: 60,
            retry_exponential_backoff: false,
            timeout_seconds: Some(1800),
            group: group.map(str::to_string),
        }
    }

    /// An argument no shell or template may change.
    const NASTY: &str = "$HOME \"dq\" it's a\\b\nline2 `id` $(id) ; rm -rf / * {{ ds }} {% if %} {# c #} ~ !x";

    /// Two ingest tasks, a staging task on each, a mart on both, a test on the mart.
    fn sample(project_dir: &str, mdp_executable: &str) -> ExportDag {
        let mut ingest_google = task("ingest_google_ads", &["ingest", "--source", "google_ads"], &[], Some("ingest"));
        ingest_google.retries = 3;
        ingest_google.retry_delay_seconds = 300;
        ingest_google.retry_exponential_backoff = true;
        ingest_google.timeout_seconds = Some(3600);
        let ingest_meta = task(
            "ingest_meta_ads",
            &["ingest", "--source", "meta_ads", "--note", "cost in $ \"USD\""],
            &[],
            Some("ingest"),
        );
        let stg_google = task(
            "stg_google_ads__ad_daily",
            &["build", "--select", "stg_google_ads__ad_daily"],
            &["ingest_google_ads"],
            Some("staging"),
        );
        let stg_meta = task(
            "stg_meta_ads__ad_daily",
            &["build", "--select", "stg_meta_ads__ad_daily"],
            &["ingest_meta_ads"],
            Some("staging"),
        );
        let mut mart = task(
            "mart_ad_performance",
            &["build", "--select", "mart_ad_performance"],
            &["stg_meta_ads__ad_daily", "stg_google_ads__ad_daily"],
            Some("marts"),
        );
        mart.retries = 0;
        mart.timeout_seconds = None;
        // Last word ends in `.sh`: unquoted, Airflow would look for a template file of that name.
        let test = task(
            "test.marts",
            &["test", "--select", "marts", "--label", NASTY, "", "run.sh"],
            &["mart_ad_performance"],
            None,
        );
        ExportDag {
            dag_id: "mdp_my_project__daily".to_string(),
            description: "Marketing data \"daily\" run\nof my_project (M\u{fc}nchen) \\o/".to_string(),
            schedule: Some("0 6 * * *".to_string()),
            timezone: "Europe/Berlin".to_string(),
            start_date: chrono::NaiveDate::from_ymd_opt(2024, 1, 15).unwrap(),
            catchup: false,
            max_active_runs: 1,
            project_dir: project_dir.to_string(),
            mdp_executable: mdp_executable.to_string(),
            tasks: vec![ingest_google, ingest_meta, stg_google, stg_meta, mart, test],
        }
    }

    const PROJECT_DIR: &str = "/srv/mdp/my project's \"dir\" $HOME";

    #[test]
    fn renders_the_expected_python() {
        let text = render(&sample(PROJECT_DIR, "mdp")).unwrap();
        assert!(text.starts_with("# Generated by mdp (`mdp airflow export`). Do not edit this file by hand:\n"));
        assert!(text.is_ascii(), "the file is pure ASCII");
        for expected in [
            "from airflow import DAG\n",
            "    from airflow.operators.bash import BashOperator\n",
            "    from airflow.providers.standard.operators.bash import BashOperator\n",
            "    from airflow.utils.task_group import TaskGroup\n",
            "import pendulum\n",
            "from datetime import timedelta\n",
            "    \"owner\": \"mdp\",\n    \"depends_on_past\": False,\n",
            "    schedule=\"0 6 * * *\",\n",
            "    start_date=pendulum.datetime(2024, 1, 15, tz=\"Europe/Berlin\"),\n",
            "    catchup=False,\n    max_active_runs=1,\n    tags=[\"mdp\"],\n",
            "    description=\"Marketing data \\\"daily\\\" run\\nof my_project (M\\xfcnchen) \\\\o/\",\n",
            "    with TaskGroup(group_id=\"ingest\", prefix_group_id=False):\n",
            "            bash_command=\"cd '/srv/mdp/my project'\\\\''s \\\"dir\\\" $HOME' && mdp ingest --source google_ads\",\n",
            "            env={},\n            append_env=True,\n            retries=3,\n            retry_delay=timedelta(seconds=300),\n            retry_exponential_backoff=True,\n            execution_timeout=timedelta(seconds=3600),\n",
            "            execution_timeout=None,\n",
            " 'run.sh'\",\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        // Dependencies: one line per edge, sorted, after every task.
        let edges: Vec<&str> = text.lines().filter(|l| l.contains(" >> ")).collect();
        assert_eq!(
            edges,
            [
                "    tasks[\"ingest_google_ads\"] >> tasks[\"stg_google_ads__ad_daily\"]",
                "    tasks[\"ingest_meta_ads\"] >> tasks[\"stg_meta_ads__ad_daily\"]",
                "    tasks[\"mart_ad_performance\"] >> tasks[\"test.marts\"]",
                "    tasks[\"stg_google_ads__ad_daily\"] >> tasks[\"mart_ad_performance\"]",
                "    tasks[\"stg_meta_ads__ad_daily\"] >> tasks[\"mart_ad_performance\"]",
            ]
        );
        assert!(text.rfind(" = BashOperator(").unwrap() < text.find(" >> ").unwrap());
        // Deterministic.
        assert_eq!(text, render(&sample(PROJECT_DIR, "mdp")).unwrap());
    }

    #[test]
    fn manual_dag_without_groups() {
        let mut dag = sample(PROJECT_DIR, "/opt/mdp/bin/mdp");
        dag.schedule = None;
        for t in &mut dag.tasks {
            t.group = None;
        }
        let text = render(&dag).unwrap();
        assert!(text.contains("    schedule=None,\n"), "{text}");
        assert!(!text.contains("TaskGroup"), "{text}");
        assert!(text.contains("&& /opt/mdp/bin/mdp build --select mart_ad_performance\""), "{text}");
        // Tasks in the given order.
        let order: Vec<usize> =
            dag.tasks.iter().map(|t| text.find(&format!("task_id={}", py_str(&t.task_id))).unwrap()).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    #[test]
    fn generated_file_is_valid_python_3_9() {
        if skip_without_python("Python syntax") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mdp_dag.py");
        std::fs::write(&file, render(&sample(PROJECT_DIR, "mdp")).unwrap()).unwrap();
        let out = Command::new("python3")
            .args(["-c", "import ast,sys; ast.parse(open(sys.argv[1]).read(), feature_version=(3, 9))"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// The fake Airflow: the parts of the real API the file uses, strict about keyword names,
    /// with TaskGroup id prefixing, Jinja rendering and the `.sh` template-file trap.
    const FAKE_CORE: &str = r##"
import datetime as _dt

DAG_KWARGS = {"dag_id", "description", "schedule", "start_date", "catchup", "max_active_runs", "tags", "default_args"}
TASK_KWARGS = {"task_id", "bash_command", "env", "append_env", "retries", "retry_delay",
               "retry_exponential_backoff", "execution_timeout"}
_dags = []
_current = []
_groups = []


class DuplicateTaskIdFound(Exception):
    pass


class DAG:
    def __init__(self, dag_id, **kwargs):
        unknown = set(kwargs) - DAG_KWARGS
        if unknown:
            raise TypeError("DAG() got unexpected keyword arguments %s" % sorted(unknown))
        self.dag_id = dag_id
        self.kwargs = kwargs
        self.tasks = {}
        self.group_ids = set()
        _dags.append(self)

    def __enter__(self):
        _current.append(self)
        return self

    def __exit__(self, *exc):
        _current.pop()
        return False


class TaskGroup:
    def __init__(self, group_id, prefix_group_id=True, **kwargs):
        if not _current:
            raise RuntimeError("TaskGroup outside a DAG")
        dag = _current[-1]
        if group_id in dag.group_ids or group_id in dag.tasks:
            raise DuplicateTaskIdFound("group_id %r has already been added to the DAG" % group_id)
        dag.group_ids.add(group_id)
        self.group_id = group_id
        self.prefix_group_id = prefix_group_id

    def __enter__(self):
        _groups.append(self)
        return self

    def __exit__(self, *exc):
        _groups.pop()
        return False


def _each(other):
    return list(other) if isinstance(other, (list, tuple, set)) else [other]


def _render_jinja(text):
    """What Airflow's Jinja makes of the text: a strict stand-in, checked against jinja2 when present."""
    out, i, esc = [], 0, "{{ '{' }}"
    while i < len(text):
        if text.startswith(esc, i):
            out.append("{")
            i += len(esc)
        elif text[i] == "{" and text[i + 1:i + 2] in ("{", "%", "#"):
            raise ValueError("unescaped Jinja syntax at %d in %r" % (i, text))
        else:
            out.append(text[i])
            i += 1
    rendered = "".join(out)
    try:
        import jinja2
    except ImportError:
        return rendered
    real = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(text).render()
    assert real == rendered, "jinja2 renders %r, the stand-in %r" % (real, rendered)
    return real


class BashOperator:
    IMPORTED_FROM = None
    template_ext = (".sh", ".bash")

    def __init__(self, **kwargs):
        unknown = set(kwargs) - TASK_KWARGS
        if unknown:
            raise TypeError("BashOperator() got unexpected keyword arguments %s" % sorted(unknown))
        if not _current:
            raise RuntimeError("task outside a DAG")
        dag = _current[-1]
        task_id = kwargs["task_id"]
        group = _groups[-1] if _groups else None
        if group is not None and group.prefix_group_id:
            task_id = group.group_id + "." + task_id
        if task_id in dag.tasks or task_id in dag.group_ids:
            raise DuplicateTaskIdFound(task_id)
        for name in ("retry_delay", "execution_timeout"):
            value = kwargs.get(name)
            if value is not None and not isinstance(value, _dt.timedelta):
                raise TypeError("%s must be a timedelta" % name)
        self.task_id = task_id
        self.group_id = group.group_id if group is not None else None
        self.kwargs = kwargs
        self.bash_command = kwargs["bash_command"]
        self.upstream_task_ids = set()
        self.downstream_task_ids = set()
        dag.tasks[task_id] = self

    def rendered_command(self):
        if self.bash_command.endswith(self.template_ext):
            raise ValueError("TemplateNotFound: Airflow would read %r as a template file" % self.bash_command)
        return _render_jinja(self.bash_command)

    def set_downstream(self, other):
        for task in _each(other):
            self.downstream_task_ids.add(task.task_id)
            task.upstream_task_ids.add(self.task_id)

    def set_upstream(self, other):
        for task in _each(other):
            task.set_downstream(self)

    def __rshift__(self, other):
        self.set_downstream(other)
        return other

    def __lshift__(self, other):
        self.set_upstream(other)
        return other

    def __rrshift__(self, other):
        self.set_upstream(other)
        return self

    def __rlshift__(self, other):
        self.set_downstream(other)
        return self
"##;

    const FAKE_PENDULUM: &str = r#"
import datetime as _dt


class _Zone(_dt.tzinfo):
    def __init__(self, name):
        self.name = name

    def utcoffset(self, value):
        return _dt.timedelta(0)

    def dst(self, value):
        return _dt.timedelta(0)

    def tzname(self, value):
        return self.name


def timezone(name):
    return _Zone(name)


def datetime(year, month, day, hour=0, minute=0, second=0, tz="UTC"):
    if isinstance(tz, str):
        tz = timezone(tz)
    return _dt.datetime(year, month, day, hour, minute, second, tzinfo=tz)
"#;

    /// Imports the DAG file and prints what Airflow would see, as JSON.
    const DUMP: &str = r#"
import importlib.util, json, sys
import airflow._fake as fake

spec = importlib.util.spec_from_file_location("mdp_exported_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
dags = [value for value in vars(module).values() if isinstance(value, fake.DAG)]
assert len(dags) == 1 and fake._dags == dags, "expected exactly one DAG at module level"
dag = dags[0]
kw = dag.kwargs
start = kw["start_date"]

def seconds(value):
    return None if value is None else value.total_seconds()

tasks = []
for task in dag.tasks.values():
    tasks.append({
        "task_id": task.task_id,
        "group": task.group_id,
        "imported_from": type(task).IMPORTED_FROM,
        "bash_command": task.bash_command,
        "rendered_command": task.rendered_command(),
        "env": task.kwargs["env"],
        "append_env": task.kwargs["append_env"],
        "retries": task.kwargs["retries"],
        "retry_delay": seconds(task.kwargs["retry_delay"]),
        "retry_exponential_backoff": task.kwargs["retry_exponential_backoff"],
        "execution_timeout": seconds(task.kwargs["execution_timeout"]),
        "upstream": sorted(task.upstream_task_ids),
        "downstream": sorted(task.downstream_task_ids),
    })
print(json.dumps({
    "dag_id": dag.dag_id,
    "description": kw["description"],
    "has_schedule": "schedule" in kw,
    "schedule": kw.get("schedule"),
    "start_date": [start.year, start.month, start.day, start.tzinfo.tzname(None)],
    "catchup": kw["catchup"],
    "max_active_runs": kw["max_active_runs"],
    "tags": kw["tags"],
    "default_args": kw["default_args"],
    "tasks": tasks,
}))
"#;

    #[derive(Clone, Copy, Debug)]
    enum Layout {
        /// Airflow 2.4+: `airflow.operators.bash`, `airflow.utils.task_group`.
        Airflow2,
        /// Only the Airflow 3 homes: `airflow.providers.standard.operators.bash`, `airflow.sdk`.
        Airflow3,
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn write_fakes(root: &Path, layout: Layout) {
        write(&root.join("airflow/__init__.py"), "from airflow._fake import DAG\n");
        write(&root.join("airflow/_fake.py"), FAKE_CORE);
        write(&root.join("pendulum.py"), FAKE_PENDULUM);
        write(&root.join("dump.py"), DUMP);
        let (bash_module, group_module, packages): (&str, &str, &[&str]) = match layout {
            Layout::Airflow2 => (
                "airflow/operators/bash.py",
                "airflow/utils/task_group.py",
                &["airflow/operators/__init__.py", "airflow/utils/__init__.py"],
            ),
            Layout::Airflow3 => (
                "airflow/providers/standard/operators/bash.py",
                "airflow/sdk/__init__.py",
                &[
                    "airflow/providers/__init__.py",
                    "airflow/providers/standard/__init__.py",
                    "airflow/providers/standard/operators/__init__.py",
                ],
            ),
        };
        for package in packages {
            write(&root.join(package), "");
        }
        let imported_from = bash_module.trim_end_matches(".py").replace('/', ".");
        write(
            &root.join(bash_module),
            &format!(
                "from airflow._fake import BashOperator as _Base\n\n\nclass BashOperator(_Base):\n    IMPORTED_FROM = {imported_from:?}\n"
            ),
        );
        write(&root.join(group_module), "from airflow._fake import TaskGroup\n");
    }

    /// A stand-in for mdp: prints its working directory and each argument, NUL-terminated.
    fn write_fake_mdp(path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        write(path, "#!/bin/sh\nprintf '%s\\0' \"$(pwd)\" \"$@\"\n");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn import_with_fake_airflow(layout: Layout) {
        if skip_without_python("fake-Airflow import") {
            return;
        }
        let temp = tempfile::tempdir().unwrap();
        let root: PathBuf = temp.path().canonicalize().unwrap();
        let fakes = root.join("fakes");
        write_fakes(&fakes, layout);
        // Project directory and executable with a space, quotes and `$` in their paths.
        let project = root.join("my project's \"dir\" $HOME");
        let mdp = project.join("bin/fake mdp's");
        write_fake_mdp(&mdp);
        let dag = sample(project.to_str().unwrap(), mdp.to_str().unwrap());
        let file = root.join("mdp_dag.py");
        write(&file, &render(&dag).unwrap());

        let out = Command::new("python3")
            .arg(fakes.join("dump.py"))
            .arg(&file)
            .env("PYTHONPATH", &fakes)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "import failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

        assert_eq!(seen["dag_id"], "mdp_my_project__daily");
        assert_eq!(seen["description"], dag.description.as_str());
        assert_eq!(seen["has_schedule"], true);
        assert_eq!(seen["schedule"], "0 6 * * *");
        assert_eq!(seen["start_date"], serde_json::json!([2024, 1, 15, "Europe/Berlin"]));
        assert_eq!(seen["catchup"], false);
        assert_eq!(seen["max_active_runs"], 1);
        assert_eq!(seen["tags"], serde_json::json!(["mdp"]));
        assert_eq!(seen["default_args"], serde_json::json!({"owner": "mdp", "depends_on_past": false}));

        let tasks = seen["tasks"].as_array().unwrap();
        let ids: Vec<&str> = tasks.iter().map(|t| t["task_id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "ingest_google_ads",
                "ingest_meta_ads",
                "stg_google_ads__ad_daily",
                "stg_meta_ads__ad_daily",
                "mart_ad_performance",
                "test.marts"
            ]
        );
        let expected_upstream: HashMap<&str, Vec<&str>> = HashMap::from([
            ("ingest_google_ads", vec![]),
            ("ingest_meta_ads", vec![]),
            ("stg_google_ads__ad_daily", vec!["ingest_google_ads"]),
            ("stg_meta_ads__ad_daily", vec!["ingest_meta_ads"]),
            ("mart_ad_performance", vec!["stg_google_ads__ad_daily", "stg_meta_ads__ad_daily"]),
            ("test.marts", vec!["mart_ad_performance"]),
        ]);
        let expected_bash = match layout {
            Layout::Airflow2 => "airflow.operators.bash",
            Layout::Airflow3 => "airflow.providers.standard.operators.bash",
        };
        let shell = if Command::new("bash").arg("-c").arg("true").status().is_ok_and(|s| s.success()) {
            "bash" // what BashOperator runs
        } else {
            "sh"
        };
        for (seen_task, task) in tasks.iter().zip(&dag.tasks) {
            let id = task.task_id.as_str();
            assert_eq!(seen_task["imported_from"], expected_bash, "{id}");
            assert_eq!(seen_task["group"].as_str(), task.group.as_deref(), "{id}");
            assert_eq!(seen_task["upstream"], serde_json::json!(expected_upstream[id]), "{id}");
            assert_eq!(seen_task["retries"], task.retries, "{id}");
            assert_eq!(seen_task["retry_delay"].as_f64(), Some(task.retry_delay_seconds as f64), "{id}");
            assert_eq!(seen_task["retry_exponential_backoff"], task.retry_exponential_backoff, "{id}");
            assert_eq!(seen_task["execution_timeout"].as_f64(), task.timeout_seconds.map(|s| s as f64), "{id}");
            assert_eq!(seen_task["env"], serde_json::json!({}), "{id}");
            assert_eq!(seen_task["append_env"], true, "{id}");

            // Run the command as the worker would: mdp must get exactly the arguments, in the project.
            let command = seen_task["rendered_command"].as_str().unwrap();
            let run = Command::new(shell).arg("-c").arg(command).output().unwrap();
            assert!(run.status.success(), "{id}: {command}\n{}", String::from_utf8_lossy(&run.stderr));
            let printed = String::from_utf8(run.stdout).unwrap();
            let mut words: Vec<&str> = printed.split('\0').collect();
            assert_eq!(words.pop(), Some(""), "{id}: output ends with NUL");
            assert_eq!(words[0], dag.project_dir, "{id}: runs in the project directory");
            assert_eq!(words[1..], task.args.iter().map(String::as_str).collect::<Vec<_>>(), "{id}: {command}");
        }
        let test = &tasks[5];
        assert!(test["bash_command"].as_str().unwrap().contains("{{ '{' }}"), "Jinja syntax escaped");
        assert_eq!(test["downstream"], serde_json::json!([]));
        assert_eq!(tasks[0]["downstream"], serde_json::json!(["stg_google_ads__ad_daily"]));
    }

    #[test]
    fn fake_airflow_2_sees_tasks_dependencies_and_commands() {
        import_with_fake_airflow(Layout::Airflow2);
    }

    #[test]
    fn fake_airflow_3_imports_through_the_fallbacks() {
        import_with_fake_airflow(Layout::Airflow3);
    }

    #[test]
    fn python_literals_round_trip() {
        if skip_without_python("Python literal") {
            return;
        }
        let values = [
            "",
            "plain",
            "\"double\" 'single' '''triple''' \"\"\"",
            "back\\slash \\n not a newline \\",
            "new\nline\r\ttab \0 nul \x07 bell \x7f del",
            "M\u{fc}nchen \u{2028} \u{feff} \u{1f600} \u{10ffff}",
            "{{ ds }} $HOME `id`",
        ];
        let list: Vec<String> = values.iter().map(|v| py_str(v)).collect();
        let program = format!("import json, sys\nsys.stdout.write(json.dumps([{}]))\n", list.join(", "));
        let out = Command::new("python3").arg("-c").arg(&program).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let back: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(back, values);
        assert!(list.iter().all(|l| l.is_ascii()));
    }

    #[test]
    fn shell_words_round_trip() {
        let words = [
            "",
            "plain",
            "--select=a+b",
            "it's",
            "'",
            "''",
            "a b",
            "$HOME",
            "\"",
            "\\",
            "\n",
            "*",
            "~",
            "x.sh",
            "%1",
            "a=b",
        ];
        let mut script = "printf '%s\\0'".to_string();
        for word in words {
            script.push(' ');
            script.push_str(&sh_word(word));
        }
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(out.status.success(), "{script}");
        let printed = String::from_utf8(out.stdout).unwrap();
        let mut back: Vec<&str> = printed.split('\0').collect();
        back.pop();
        assert_eq!(back, words, "{script}");
        assert_eq!(sh_word("x.sh"), "'x.sh'");
        assert_eq!(sh_word("google_ads"), "google_ads");
        assert_eq!(sh_command_word("a=b"), "'a=b'");
        assert_eq!(sh_command_word("if"), "'if'");
        assert_eq!(sh_command_word("/usr/local/bin/mdp"), "/usr/local/bin/mdp");
        assert_eq!(jinja_escape("{a} {{b}} {%c {#d }}"), "{a} {{ '{' }}{b}} {{ '{' }}%c {{ '{' }}#d }}");
    }

    fn error_of(edit: impl FnOnce(&mut ExportDag)) -> ExportError {
        let mut dag = sample(PROJECT_DIR, "mdp");
        edit(&mut dag);
        render(&dag).expect_err("the DAG should be rejected")
    }

    #[test]
    fn unknown_upstream_names_the_task() {
        let err = error_of(|d| d.tasks[4].upstream.push("stg_tiktok__ad_daily".to_string()));
        assert_eq!(
            err,
            ExportError::UnknownUpstream {
                task_id: "mart_ad_performance".to_string(),
                upstream: "stg_tiktok__ad_daily".to_string()
            }
        );
        let message = err.to_string();
        assert!(message.contains("`mart_ad_performance`") && message.contains("`stg_tiktok__ad_daily`"), "{message}");
    }

    #[test]
    fn duplicate_task_id_names_the_task() {
        let err = error_of(|d| d.tasks[3].task_id = "stg_google_ads__ad_daily".to_string());
        assert_eq!(err, ExportError::DuplicateTaskId { task_id: "stg_google_ads__ad_daily".to_string() });
        assert!(err.to_string().contains("`stg_google_ads__ad_daily`"), "{err}");
    }

    #[test]
    fn invalid_ids_name_the_task() {
        for bad in ["stg google", "stg/google", "stg'x", "", "caf\u{e9}", &"x".repeat(251)] {
            let err = error_of(|d| d.tasks[2].task_id = bad.to_string());
            assert_eq!(err, ExportError::InvalidTaskId { task_id: bad.to_string() });
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        let err = error_of(|d| d.tasks[2].group = Some("stag.ing".to_string()));
        assert!(matches!(&err, ExportError::InvalidGroup { task_id, .. } if task_id == "stg_google_ads__ad_daily"));
        assert!(err.to_string().contains("`stg_google_ads__ad_daily`") && err.to_string().contains("`stag.ing`"));
        let err = error_of(|d| d.tasks[2].group = Some("ingest_meta_ads".to_string()));
        assert!(
            matches!(&err, ExportError::GroupClash { task_id, .. } if task_id == "stg_google_ads__ad_daily"),
            "{err}"
        );
        assert!(err.to_string().contains("`ingest_meta_ads`"), "{err}");
        let err = error_of(|d| d.dag_id = "my dag".to_string());
        assert!(matches!(&err, ExportError::InvalidDagId { .. }) && err.to_string().contains("`my dag`"));
        let err = error_of(|d| d.tasks[5].args.push("nul\0byte".to_string()));
        assert!(err.to_string().starts_with("task `test.marts`: argument 8 contains a NUL"), "{err}");
        let err = error_of(|d| d.tasks[1].timeout_seconds = Some(0));
        assert!(err.to_string().starts_with("task `ingest_meta_ads`: timeout must be positive"), "{err}");
    }

    #[test]
    fn cycle_names_the_tasks() {
        // ingest_google_ads → stg_google_ads__ad_daily → mart_ad_performance → ingest_google_ads
        let err = error_of(|d| d.tasks[0].upstream.push("mart_ad_performance".to_string()));
        let ExportError::Cycle { task_id, cycle } = &err else { panic!("expected a cycle, got {err}") };
        assert_eq!(task_id, "ingest_google_ads");
        assert_eq!(
            cycle,
            &["ingest_google_ads", "mart_ad_performance", "stg_google_ads__ad_daily", "ingest_google_ads"]
        );
        assert_eq!(
            err.to_string(),
            "task `ingest_google_ads` is in a dependency cycle: `ingest_google_ads` waits for `mart_ad_performance`, \
             which waits for `stg_google_ads__ad_daily`, which waits for `ingest_google_ads`"
        );
        let err = error_of(|d| d.tasks[5].upstream.push("test.marts".to_string()));
        assert_eq!(err.to_string(), "task `test.marts` is in a dependency cycle: `test.marts` waits for `test.marts`");
    }

    #[test]
    fn invalid_settings_are_rejected() {
        type Edit = fn(&mut ExportDag);
        let cases: [(&str, Edit); 5] = [
            ("timezone", |d| d.timezone = "Mars/Olympus".to_string()),
            ("project_dir", |d| d.project_dir = "relative/dir".to_string()),
            ("schedule", |d| d.schedule = Some(" ".to_string())),
            ("max_active_runs", |d| d.max_active_runs = 0),
            ("mdp_executable", |d| d.mdp_executable = String::new()),
        ];
        for (field, edit) in cases {
            let err = error_of(edit);
            assert!(matches!(&err, ExportError::InvalidSetting { field: f, .. } if *f == field), "{field}: {err}");
        }
    }

    #[test]
    fn a_long_chain_is_checked_without_recursion() {
        let mut dag = sample(PROJECT_DIR, "mdp");
        dag.tasks = (0..20_000)
            .map(|i| {
                let upstream: Vec<String> = if i == 0 { vec![] } else { vec![format!("t{}", i - 1)] };
                let mut t = task(&format!("t{i}"), &["build"], &[], None);
                t.upstream = upstream;
                t
            })
            .collect();
        assert!(render(&dag).is_ok());
        dag.tasks[0].upstream.push("t19999".to_string());
        assert!(matches!(render(&dag), Err(ExportError::Cycle { cycle, .. }) if cycle.len() == 20_001));
    }
}
