//! Actions: the pipeline, a backfill or one task re-run, each started as a child `mdp` process of
//! the same executable (`mdp -C <project> pipeline …`). The child takes the writer lock and records
//! its run like any run; the server only keeps, in memory, what it started: its state (running,
//! succeeded, failed with exit code) and the last lines of its output.
//!
//! One action runs at a time: a second would only meet the first one's writer lock.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Lines of output kept per action.
pub const TAIL_LINES: usize = 60;
/// Characters kept per line.
const LINE_CHARS: usize = 400;
/// Finished actions kept in memory.
const HISTORY: usize = 50;

/// How actions start their child process.
#[derive(Debug, Clone)]
pub struct ActionsConfig {
    /// The `mdp` executable (`std::env::current_exe()` of the server).
    pub exe: PathBuf,
    pub project_dir: PathBuf,
    /// `--target` to pass on, if the server was started with one.
    pub target: Option<String>,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionRequest {
    Pipeline,
    Backfill {
        from: NaiveDate,
        to: NaiveDate,
        sources: Vec<String>,
    },
    /// Re-run one task of a run (`pipeline --task`).
    Retry {
        task_id: String,
    },
}

impl ActionRequest {
    /// The `mdp` arguments after `-C <project>` (values in `--flag=value` form, so no value can be
    /// read as a flag).
    pub fn args(&self) -> Vec<String> {
        match self {
            ActionRequest::Pipeline => vec!["pipeline".into()],
            ActionRequest::Backfill { from, to, sources } => {
                let mut args = vec!["backfill".into(), format!("--from={from}"), format!("--to={to}")];
                args.extend(sources.iter().map(|s| format!("--source={s}")));
                args
            }
            ActionRequest::Retry { task_id } => vec!["pipeline".into(), format!("--task={task_id}")],
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ActionRequest::Pipeline => "pipeline",
            ActionRequest::Backfill { .. } => "backfill",
            ActionRequest::Retry { .. } => "retry",
        }
    }
}

/// The state of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionState {
    Running,
    Succeeded,
    Failed,
}

impl ActionState {
    /// The word shown and serialized (`running`, `succeeded`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Running => "running",
            ActionState::Succeeded => "succeeded",
            ActionState::Failed => "failed",
        }
    }
}

impl std::str::FromStr for ActionState {
    type Err = mdp_core::UnknownWordError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const ALL: [ActionState; 3] = [ActionState::Running, ActionState::Succeeded, ActionState::Failed];
        ALL.into_iter().find(|s| s.as_str() == text).ok_or_else(|| mdp_core::UnknownWordError {
            vocabulary: "action state",
            given: text.to_string(),
            expected: ALL.map(ActionState::as_str).join(", "),
        })
    }
}

/// An action the server started.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub id: u64,
    pub kind: &'static str,
    /// The command line, as `mdp …`.
    pub command: String,
    pub state: ActionState,
    pub exit_code: Option<i32>,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    /// The run it recorded, once its output named it.
    pub run_id: Option<String>,
    /// The last lines of its output (stdout and stderr interleaved as they came).
    pub tail: VecDeque<String>,
}

#[derive(Default)]
struct Log {
    next_id: u64,
    actions: VecDeque<Action>,
}

/// Starts actions and remembers them.
#[derive(Clone)]
pub struct ActionRunner {
    config: ActionsConfig,
    log: Arc<Mutex<Log>>,
}

impl std::fmt::Debug for ActionRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionRunner").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Why an action did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("action {0} is still running: wait for it to finish (see /actions/{0})")]
    Busy(u64),
    #[error("cannot start `{command}`: {source}")]
    Spawn { command: String, source: std::io::Error },
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

impl ActionRunner {
    pub fn new(config: ActionsConfig) -> ActionRunner {
        ActionRunner { config, log: Arc::new(Mutex::new(Log { next_id: 1, actions: VecDeque::new() })) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every action, newest first.
    pub fn list(&self) -> Vec<Action> {
        self.lock().actions.iter().rev().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Action> {
        self.lock().actions.iter().find(|a| a.id == id).cloned()
    }

    /// The action still running, if any.
    pub fn running(&self) -> Option<Action> {
        self.lock().actions.iter().find(|a| a.state == ActionState::Running).cloned()
    }

    /// Start an action as a child process; returns its id.
    pub fn start(&self, request: &ActionRequest) -> Result<u64, StartError> {
        let mut args: Vec<String> = vec!["-C".into(), self.config.project_dir.display().to_string()];
        if let Some(target) = &self.config.target {
            args.push(format!("--target={target}"));
        }
        args.extend(request.args());
        let command = format!("mdp {}", args.join(" "));
        let mut log = self.lock();
        if let Some(running) = log.actions.iter().find(|a| a.state == ActionState::Running) {
            return Err(StartError::Busy(running.id));
        }
        let mut child = tokio::process::Command::new(&self.config.exe)
            .args(&args)
            // The server's token is for the server: the child needs none of it.
            .env_remove("MDP_SERVE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| StartError::Spawn { command: command.clone(), source })?;
        let id = log.next_id;
        log.next_id += 1;
        log.actions.push_back(Action {
            id,
            kind: request.kind(),
            command,
            state: ActionState::Running,
            exit_code: None,
            started_at: now(),
            finished_at: None,
            run_id: None,
            tail: VecDeque::new(),
        });
        while log.actions.len() > HISTORY {
            log.actions.pop_front();
        }
        drop(log);
        tracing::info!(action = id, kind = request.kind(), "started an action");
        let readers = [
            child.stdout.take().map(|s| self.spawn_reader(id, s)),
            child.stderr.take().map(|s| self.spawn_reader(id, s)),
        ];
        let runner = self.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            for reader in readers.into_iter().flatten() {
                let _ = reader.await;
            }
            let mut log = runner.lock();
            if let Some(action) = log.actions.iter_mut().find(|a| a.id == id) {
                action.finished_at = Some(now());
                match status {
                    Ok(status) => {
                        action.exit_code = status.code();
                        action.state = if status.success() { ActionState::Succeeded } else { ActionState::Failed };
                    }
                    Err(e) => {
                        action.state = ActionState::Failed;
                        push_line(action, format!("(the server lost the process: {e})"));
                    }
                }
                tracing::info!(action = id, state = ?action.state, code = ?action.exit_code, "an action finished");
            }
        });
        Ok(id)
    }

    fn spawn_reader(&self, id: u64, stream: impl AsyncRead + Unpin + Send + 'static) -> tokio::task::JoinHandle<()> {
        let log = self.log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(action) = log.actions.iter_mut().find(|a| a.id == id) {
                    if let Some(run_id) = run_id_in(&line) {
                        action.run_id = Some(run_id);
                    }
                    push_line(action, line);
                }
            }
        })
    }
}

/// The run an orchestrated command names: `run <id> (pipeline): …` when it starts, `details: mdp
/// runs show <id>` when it ends.
fn run_id_in(line: &str) -> Option<String> {
    let line = line.trim();
    let id = match line.strip_prefix("details: mdp runs show ") {
        Some(id) => id,
        None => line.strip_prefix("run ")?.split_once(" (")?.0,
    };
    let id = id.trim();
    (!id.is_empty() && !id.contains(char::is_whitespace)).then(|| id.to_string())
}

fn push_line(action: &mut Action, mut line: String) {
    if line.len() > LINE_CHARS {
        let mut end = LINE_CHARS;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    action.tail.push_back(line);
    while action.tail.len() > TAIL_LINES {
        action.tail.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_state_has_one_spelling_in_pages_and_the_api() {
        for state in [ActionState::Running, ActionState::Succeeded, ActionState::Failed] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
            assert_eq!(state.as_str().parse::<ActionState>(), Ok(state));
        }
        assert!("success".parse::<ActionState>().is_err());
    }

    #[test]
    fn the_run_is_read_from_the_commands_output() {
        assert_eq!(run_id_in("run 01a2-ff (pipeline): 256 tasks, 4 at a time").as_deref(), Some("01a2-ff"));
        assert_eq!(run_id_in("details: mdp runs show 01a2-ff").as_deref(), Some("01a2-ff"));
        assert_eq!(run_id_in("running the models"), None);
        assert_eq!(run_id_in("run the models (later)"), None);
    }

    #[test]
    fn arguments_cannot_be_read_as_flags() {
        let backfill = ActionRequest::Backfill {
            from: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 6, 7).unwrap(),
            sources: vec!["google_ads".into()],
        };
        assert_eq!(backfill.args(), ["backfill", "--from=2026-06-01", "--to=2026-06-07", "--source=google_ads"]);
        let retry = ActionRequest::Retry { task_id: "--no-build".into() };
        assert_eq!(retry.args(), ["pipeline", "--task=--no-build"]);
    }

    #[tokio::test]
    async fn an_action_keeps_its_outcome_and_output_tail() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-mdp");
        std::fs::write(
            &script,
            "#!/bin/sh\nfor i in $(seq 1 100); do echo \"line $i\"; done\necho 'details: mdp runs show r-123'\necho oops >&2\nexit 3\n",
        )
        .unwrap();
        let mut perms = std::fs::metadata(&script).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&script, perms).unwrap();
        let runner =
            ActionRunner::new(ActionsConfig { exe: script, project_dir: dir.path().to_path_buf(), target: None });
        let id = runner.start(&ActionRequest::Pipeline).unwrap();
        assert!(matches!(runner.start(&ActionRequest::Pipeline), Err(StartError::Busy(busy)) if busy == id));
        let action = loop {
            let a = runner.get(id).unwrap();
            if a.state != ActionState::Running {
                break a;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(action.state, ActionState::Failed);
        assert_eq!(action.exit_code, Some(3));
        assert_eq!(action.run_id.as_deref(), Some("r-123"));
        assert_eq!(action.tail.len(), TAIL_LINES, "only the tail is kept");
        assert!(action.tail.iter().any(|l| l == "oops"), "stderr is kept too");
        assert!(!action.tail.iter().any(|l| l == "line 1"), "the oldest lines are dropped");
        assert!(action.command.ends_with(" pipeline"), "{}", action.command);
        // Finished: a new action may start.
        assert!(runner.start(&ActionRequest::Pipeline).is_ok());
    }
}
