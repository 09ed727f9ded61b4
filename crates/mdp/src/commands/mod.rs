//! One module per command; [`run`] dispatches.

mod auth;
mod bench;
mod check;
mod connector;
mod demo;
mod docs;
mod doctor;
mod ingest;
mod init;
mod migrate;
mod orchestrate;
mod sandbox;
mod serve;
mod sql;
mod transform;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(&cli.global, args).await,
        Command::Init(args) => init::run(args).map(|()| ExitCode::SUCCESS),
        Command::Doctor => doctor::run(&cli.global).await,
        Command::Auth(args) => auth::run(&cli.global, args).await,
        Command::Connector(args) => connector::run(&cli.global, args).await,
        Command::Migrate => migrate::run(&cli.global).await.map(|()| ExitCode::SUCCESS),
        Command::Ingest(args) => ingest::run(&cli.global, args).await,
        Command::Sandbox(args) => sandbox::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Sql(args) => sql::run(&cli.global, args).await.map(|()| ExitCode::SUCCESS),
        Command::Compile(args) => transform::run(&cli.global, transform::Verb::Compile, args).await,
        Command::Run(args) => transform::run(&cli.global, transform::Verb::Run, args).await,
        Command::Test(args) => transform::run(&cli.global, transform::Verb::Test, args).await,
        Command::Seed(args) => transform::run(&cli.global, transform::Verb::Seed, args).await,
        Command::Snapshot(args) => transform::run(&cli.global, transform::Verb::Snapshot, args).await,
        Command::Build(args) => transform::run(&cli.global, transform::Verb::Build, args).await,
        Command::Ls(args) => transform::ls(&cli.global, args),
        Command::Deps => transform::deps(&cli.global),
        Command::Pipeline(args) => orchestrate::pipeline(&cli.global, args).await,
        Command::Backfill(args) => orchestrate::backfill(&cli.global, args).await,
        Command::Schedule(args) => orchestrate::schedule(&cli.global, args).await,
        Command::Runs(args) => orchestrate::runs(&cli.global, args).await,
        Command::Check(args) => check::run(&cli.global, args).await,
        Command::Serve(args) => serve::run(&cli.global, args).await,
        Command::Docs(args) => docs::run(&cli.global, args).await,
        Command::Airflow(args) => orchestrate::airflow(&cli.global, args),
        Command::Bench(args) => bench::run(args).await.map(|()| ExitCode::SUCCESS),
    }
}
