//! `mdp serve`: the web UI, its JSON API, Prometheus `/metrics` and the docs site (see
//! `mdp_server`). The project is parsed once at start-up (marts, lineage, docs); the warehouse is
//! opened read-only per request, so runs keep writing while the server runs.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use mdp_project::Secret;
use mdp_server::{ActionsConfig, AppState, Catalog, ServerConfig};

use crate::cli::{GlobalArgs, ServeArgs, TransformArgs};
use crate::context::ProjectContext;

/// The token from `--token-file` (first line) or `MDP_SERVE_TOKEN`.
fn token(args: &ServeArgs) -> Result<Option<Secret>> {
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {} (--token-file)", path.display()))?;
        let token = text.lines().next().unwrap_or("").trim().to_string();
        if token.is_empty() {
            bail!("the token file {} is empty: put the token on its first line", path.display());
        }
        return Ok(Some(Secret::new(token)));
    }
    Ok(std::env::var("MDP_SERVE_TOKEN").ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).map(Secret::new))
}

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> Result<ExitCode> {
    let ctx = ProjectContext::load(global)?;
    let token = token(&args)?;
    if token.as_ref().is_some_and(|t| t.expose_secret().len() < 16) {
        eprintln!("warning: the server token is shorter than 16 characters; use a long random one (e.g. `openssl rand -hex 24`)");
    }
    let sources: Vec<String> =
        ctx.project.config.sources.iter().filter(|s| s.enabled).map(|s| s.name.as_str().to_string()).collect();
    let title = ctx.project.config.name.to_string();
    let catalog = {
        let parsed = super::transform::load(global, &TransformArgs::default())?;
        Catalog::from_parsed(&parsed, &title, sources).context("cannot render the project's docs")?
    };
    let project_dir = std::fs::canonicalize(&global.project_dir)
        .with_context(|| format!("cannot resolve the project directory {}", global.project_dir.display()))?;
    let exe = std::env::current_exe().context("cannot find the mdp executable to run actions with")?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {} (--bind): is another server using it?", args.bind))?;
    let bound = listener.local_addr()?;
    let state = AppState::new(ServerConfig {
        warehouse: ctx.options.clone(),
        bind: bound,
        token,
        catalog,
        actions: Some(ActionsConfig { exe, project_dir, target: global.target.clone() }),
        today: args.today,
    });
    let shown = if bound.ip().is_unspecified() {
        format!("http://127.0.0.1:{}/ (listening on {bound})", bound.port())
    } else {
        format!("http://{bound}/")
    };
    println!("mdp serve: {shown}");
    let actions = if state.policy.token_required() {
        "actions need the server's token"
    } else if state.policy.exposed() {
        "actions are DISABLED: listening beyond loopback without a token (set --token-file or MDP_SERVE_TOKEN)"
    } else {
        "actions allowed from this machine's browser (loopback, CSRF-protected)"
    };
    println!("warehouse: {} target '{}'; {actions}", ctx.project.config.name, ctx.target_name);
    println!("Ctrl-C stops the server.");
    mdp_server::serve(state, listener, shutdown_signal()).await.context("the web server stopped")?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
