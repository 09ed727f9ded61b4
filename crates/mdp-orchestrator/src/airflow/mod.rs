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

mod quote;
#[cfg(test)]
mod tests;

use quote::{jinja_escape, py_bool, py_str, sh_command_word, sh_word};

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
