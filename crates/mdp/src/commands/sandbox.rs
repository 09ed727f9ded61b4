//! `mdp sandbox`: serve the platforms' API imitations until Ctrl-C.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use mdp_core::Platform;
use mdp_sandbox::{Sandbox, Scale, World};

use crate::cli::SandboxArgs;

pub async fn run(args: SandboxArgs) -> Result<()> {
    let today = args.today.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let scale = Scale { ads_per_ad_group: args.ads_per_ad_group.max(1), ..Scale::default() };
    let sandbox = Sandbox::new(World::new(args.seed, today, scale));
    let addr: SocketAddr = ([127, 0, 0, 1], args.port).into();
    let (bound, server) = mdp_sandbox::serve(sandbox.clone(), addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (is the port taken? try --port 0)"))?;
    println!("sandbox listening on http://{bound} (seed {}, today {today})", args.seed);
    println!("\nsources for mdp.yml (any token value works; export them first):");
    for platform in Platform::ALL {
        let accounts: Vec<String> = sandbox.world.accounts(platform).map(|a| format!("\"{}\"", a.id)).collect();
        println!(
            "  - name: {platform}\n    platform: {platform}\n    base_url: http://{bound}\n    accounts: [{}]",
            accounts.join(", ")
        );
    }
    println!(
        "\ncontrol: GET /_sandbox/truth, POST /_sandbox/restate, POST /_sandbox/faults (see `mdp sandbox --help`)"
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => println!("stopping"),
        result = server => result.context("the sandbox server stopped")?,
    }
    Ok(())
}
