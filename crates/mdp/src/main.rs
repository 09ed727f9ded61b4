//! `mdp`: the marketing data platform in one binary.
//!
//! This crate is the command line only: it parses arguments (clap), turns them into calls on the
//! library crates, and maps every error to one message and one exit code, in [`main`].

mod cli;
mod commands;
mod context;
mod monitoring;

use std::process::ExitCode;

use clap::Parser;

/// Exit code for "the warehouse is locked by another run; try again later" (BSD `EX_TEMPFAIL`), so
/// schedulers and scripts can tell it from a failure.
pub(crate) const EXIT_LOCKED: u8 = 75;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.global.verbose);
    // The platforms of the built-in connector specs are known before any project file is read.
    mdp_spec::register_builtin();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            let locked = error.chain().any(|c| {
                matches!(
                    c.downcast_ref::<mdp_warehouse::WarehouseError>(),
                    Some(
                        mdp_warehouse::WarehouseError::Locked { .. }
                            | mdp_warehouse::WarehouseError::LockedUnknownHolder { .. }
                    )
                )
            });
            ExitCode::from(if locked { EXIT_LOCKED } else { 1 })
        }
    }
}

/// Logs go to stderr; `MDP_LOG` (e.g. `MDP_LOG=mdp_warehouse=debug`) overrides `-v`. A dbt
/// project's `{{ log(msg, info=True) }}` shows by default, as in dbt.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn,mdp::jinja=info",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MDP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
