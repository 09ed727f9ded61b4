//! `mdp auth <source>`: the OAuth 2.0 authorization-code flow with a loopback redirect (RFC 8252, as
//! `gcloud auth login` does): print the platform's consent URL, wait on 127.0.0.1 for the browser's
//! redirect, exchange the code for tokens, and write the refresh token to the file the source reads it
//! from. The token is never printed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use mdp_core::{Platform, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN};
use mdp_project::{Project, SecretRef, SourceConfig};
use mdp_sources::auth::{consent_url, exchange_code, read_redirect, write_secret_file, Redirect};
use mdp_sources::Credential;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::cli::{AuthArgs, GlobalArgs};

pub async fn run(global: &GlobalArgs, args: AuthArgs) -> Result<ExitCode> {
    let project = Project::load(&global.project_dir)?;
    let source = project
        .source(&args.source)
        .ok_or_else(|| anyhow!("no source named '{}' in {}", args.source, project.file.display()))?;
    let kind = mdp_core::kind(source.platform);
    let (Some(spec), Some(urls)) = (kind.oauth, source.oauth.as_ref()) else {
        bail!("{}", long_lived_token_help(source.platform));
    };
    if source.credentials.contains_key(mdp_core::SERVICE_ACCOUNT_KEY) {
        bail!(
            "source '{}' authenticates as a service account (`{}`): there is no consent to give; `mdp doctor` checks \
             the key. To sign in as a user instead, replace it with client_id, client_secret and refresh_token",
            source.name.as_str(),
            mdp_core::SERVICE_ACCOUNT_KEY
        );
    }
    let credential = |name: &str| -> Result<Credential> {
        let reference = source.credentials.get(name).ok_or_else(|| {
            anyhow!(
                "source '{}' has no `{name}` credential: add `{name}: {{ env: VAR }}` (your OAuth app's {name}) under \
                 its `credentials:`",
                source.name.as_str()
            )
        })?;
        let secret = reference.resolve(&project.root).with_context(|| format!("credential {name}"))?;
        Ok(Credential::new(secret.expose_secret()))
    };
    let client_id = credential(CLIENT_ID)?;
    let client_secret = credential(CLIENT_SECRET)?;
    let output = output_file(&project, source, args.output)?;

    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{} for the redirect", args.port))?;
    let redirect_uri = format!("http://127.0.0.1:{}/", listener.local_addr()?.port());
    let state = uuid::Uuid::new_v4().simple().to_string();
    // PKCE where the platform takes it: 64 random hex characters (two v4 UUIDs, 244 random bits), never shown.
    let verifier = spec.pkce.then(|| format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()));
    let url = consent_url(&spec, &urls.authorize_url, &client_id, &redirect_uri, &state, verifier.as_deref())
        .map_err(|e| anyhow!(e))?;
    println!("Open this URL in a browser, sign in and allow mdp to read the ads data:\n\n  {url}\n");
    println!("Waiting for the browser's redirect to {redirect_uri} (Ctrl-C to cancel) …");

    let code = tokio::time::timeout(Duration::from_secs(args.timeout), redirect(&listener, &state)).await.map_err(
        |_| anyhow!("no redirect came back within {} s; run `mdp auth {}` again", args.timeout, args.source),
    )??;
    let grant = exchange_code(
        source.platform,
        source.name.as_str(),
        &urls.token_url,
        &client_id,
        &client_secret,
        &code,
        &redirect_uri,
        verifier.as_deref(),
    )
    .await?;
    let Some(refresh_token) = grant.refresh_token else {
        bail!(
            "{} issued an access token but no refresh token; {}",
            source.platform,
            match source.platform {
                Platform::LinkedInAds => "programmatic refresh tokens must be enabled for your LinkedIn app",
                _ => "revoke mdp's access in the account's security settings and run `mdp auth` again",
            }
        );
    };
    write_secret_file(&output, refresh_token.expose())
        .with_context(|| format!("writing the refresh token to {}", output.display()))?;
    println!("\nWrote the refresh token of source '{}' to {}.", source.name.as_str(), output.display());
    println!("Every run now refreshes access tokens from it ({}).", spec.lifetimes);
    if !matches!(source.credentials.get(REFRESH_TOKEN), Some(SecretRef::File(path)) if project.root.join(path) == output)
    {
        println!(
            "Reference it in mdp.yml under the source's credentials:\n  {REFRESH_TOKEN}: {{ file: {} }}",
            output.strip_prefix(&project.root).unwrap_or(&output).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the refresh token goes: `--output`, else the file the source's `refresh_token` names.
fn output_file(project: &Project, source: &SourceConfig, output: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(output) = output {
        return Ok(if output.is_absolute() { output } else { std::env::current_dir()?.join(output) });
    }
    match source.credentials.get(REFRESH_TOKEN) {
        Some(SecretRef::File(path)) => Ok(project.root.join(path)),
        Some(SecretRef::Env(name)) => bail!(
            "source '{0}' reads its refresh token from the environment variable {name}, which mdp cannot write: \
             set `{REFRESH_TOKEN}: {{ file: secrets/{0}_refresh_token }}` under its credentials, or pass --output FILE",
            source.name.as_str()
        ),
        None => bail!(
            "source '{0}' has no `{REFRESH_TOKEN}` credential: add `{REFRESH_TOKEN}: {{ file: secrets/{0}_refresh_token }}` \
             under its credentials (mdp auth writes that file), or pass --output FILE",
            source.name.as_str()
        ),
    }
}

/// Serve the loopback redirect until one carries this flow's `state`: its code, or the platform's error.
async fn redirect(listener: &TcpListener, state: &str) -> Result<String> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let mut request_line = String::new();
        {
            let mut reader = BufReader::new(&mut stream);
            reader.read_line(&mut request_line).await?;
            // Drain the headers so the browser sees a clean answer.
            let mut line = String::new();
            while reader.read_line(&mut line).await? > 2 {
                line.clear();
            }
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("/");
        let (status, page, outcome) = match read_redirect(target, state) {
            Redirect::Code(code) => ("200 OK", "mdp is authorized. You can close this tab.", Some(Ok(code))),
            Redirect::Refused(error) => (
                "200 OK",
                "The authorization was refused; see the terminal.",
                Some(Err(anyhow!("the platform refused the authorization: {error}"))),
            ),
            Redirect::Other => ("404 Not Found", "Not the redirect mdp is waiting for.", None),
        };
        let body = format!("<!doctype html><title>mdp auth</title><p>{page}</p>\n");
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await.ok();
        if let Some(outcome) = outcome {
            return outcome;
        }
    }
}

/// Where a platform without refresh tokens gets its long-lived token.
fn long_lived_token_help(platform: Platform) -> String {
    match platform {
        Platform::MetaAds => "meta_ads has no refresh tokens: create a system-user token in Meta Business Settings \
             (Users → System users → Generate new token, with ads_read) and reference it as `access_token`; \
             `mdp doctor` shows when it expires"
            .to_string(),
        Platform::TikTokAds => "tiktok_ads has no refresh tokens: its access tokens stay valid until the advertiser \
             revokes them; authorize your app in the TikTok for Business developer portal and reference the token as \
             `access_token`"
            .to_string(),
        other => format!("{other} has no OAuth refresh; reference a long-lived token as `access_token`"),
    }
}
