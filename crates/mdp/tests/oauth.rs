//! Real credentials end to end, against `mdp sandbox`'s token endpoints over real HTTP: `mdp auth`'s
//! browser flow writes the refresh token file; `mdp ingest` refreshes short-lived access tokens
//! mid-ingest and loads everything exactly; a rotated refresh token is saved and the next run uses it;
//! a revoked one fails with a message to run `mdp auth`; `mdp doctor` shows each token's kind and
//! expiry. No token appears in any output or in the warehouse.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const CLIENT_ID: &str = "mdp-e2e-client";
const CLIENT_SECRET: &str = "e2e-client-secret-93a1";

/// A project with Google Ads and LinkedIn Ads refreshing their tokens at the sandbox; the refresh
/// tokens are read from files under secrets/.
fn refreshing_project(root: &Path, sandbox: &SandboxProcess) -> std::path::PathBuf {
    let dir = project(root, sandbox);
    let file = dir.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap();
    let url = &sandbox.url;
    let refreshing = |platform: &str, token: &str, consent: &str| {
        format!(
            "    oauth:\n      token_url: {url}{token}\n      authorize_url: {url}{consent}\n    credentials:\n      \
             client_id: {{ env: OAUTH_CLIENT_ID }}\n      client_secret: {{ env: OAUTH_CLIENT_SECRET }}\n      \
             refresh_token: {{ file: secrets/{platform}_refresh_token }}\n"
        )
    };
    let config = config
        .replace(
            "    credentials:\n      access_token: { env: GOOGLE_ADS_ACCESS_TOKEN }\n",
            &refreshing("google_ads", "/token", "/o/oauth2/v2/auth"),
        )
        .replace(
            "    credentials:\n      access_token: { env: LINKEDIN_ACCESS_TOKEN }\n",
            &refreshing("linkedin_ads", "/oauth/v2/accessToken", "/oauth/v2/authorization"),
        );
    // Only the two refreshing platforms: the others have their own end-to-end tests.
    let config = disable(&disable(&config, "meta_ads"), "tiktok_ads");
    std::fs::write(&file, config).unwrap();
    dir
}

fn disable(config: &str, platform: &str) -> String {
    config.replace(&format!("  - platform: {platform}\n"), &format!("  - platform: {platform}\n    enabled: false\n"))
}

fn mdp_with_client() -> std::process::Command {
    let mut command = mdp();
    command.env("OAUTH_CLIENT_ID", CLIENT_ID).env("OAUTH_CLIENT_SECRET", CLIENT_SECRET);
    command
}

/// `mdp auth <source>` as a user runs it: open the printed URL (here: fetch it, following the consent
/// page's redirect to mdp's loopback listener), then wait for mdp to write the token.
fn authorize(project: &Path, source: &str) -> String {
    let mut child = mdp_with_client()
        .args(["auth", source])
        .current_dir(project)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let url = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "mdp auth printed no URL:\n{printed}");
        printed.push_str(&line);
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://") && w.contains("state=")) {
            break url.to_string();
        }
    };
    // PKCE where the platform takes it (Google), not where it is for native apps only (LinkedIn); the
    // sandbox's token endpoint then refuses the code without the matching verifier.
    let pkce = url.contains("code_challenge_method=S256") && url.contains("code_challenge=");
    assert_eq!(pkce, source == "google_ads", "{source}: {url}");
    let page = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { reqwest::get(&url).await.unwrap().text().await.unwrap() });
    assert!(page.contains("mdp is authorized"), "{page}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "mdp auth {source} failed:\n{printed}{rest}{stderr}");
    format!("{printed}{rest}{stderr}")
}

fn refresh_token(project: &Path, platform: &str) -> String {
    std::fs::read_to_string(project.join(format!("secrets/{platform}_refresh_token"))).unwrap().trim().to_string()
}

#[test]
fn refresh_tokens_from_mdp_auth_carry_a_rotating_expiring_ingest_to_exact_totals() {
    let sandbox = start_sandbox();
    let root = tempfile::tempdir().unwrap();
    let project = refreshing_project(root.path(), &sandbox);

    // `mdp auth` through each platform's consent page and token endpoint.
    for platform in ["google_ads", "linkedin_ads"] {
        let shown = authorize(&project, platform);
        let token = refresh_token(&project, platform);
        assert!(token.starts_with("sbx-"), "{platform}: the file holds the issued refresh token");
        assert!(shown.contains(&format!("Wrote the refresh token of source '{platform}'")), "{shown}");
        assert!(!shown.contains(&token) && !shown.contains(CLIENT_SECRET), "a secret was printed:\n{shown}");
    }
    let doctor = mdp_with_client().arg("doctor").current_dir(&project).output().unwrap();
    let shown = text(&doctor);
    assert!(doctor.status.success(), "{shown}");
    assert!(
        shown.matches("access token: refreshed from the refresh token at http://127.0.0.1").count() == 2,
        "{shown}"
    );
    assert!(shown.contains("the access token expires 20"), "doctor shows the expiry:\n{shown}");

    // Access tokens live 2 s and every refresh rotates the refresh token; requests are slowed so that
    // the ingest outlives several tokens (the acceptance's 30 s over 2 minutes, scaled down).
    post_json(
        &format!("{}/_sandbox/oauth", sandbox.url),
        serde_json::json!({"access_token_ttl_secs": 2, "rotate_refresh_tokens": true}),
    );
    for platform in ["google_ads", "linkedin_ads"] {
        post_json(
            &format!("{}/_sandbox/faults", sandbox.url),
            serde_json::json!({"platform": platform, "kind": "slow", "millis": 250, "count": 60}),
        );
    }
    let before = get_json(&format!("{}/_sandbox/oauth", sandbox.url))["issued_access_tokens"].as_u64().unwrap();
    let first_tokens = [refresh_token(&project, "google_ads"), refresh_token(&project, "linkedin_ads")];
    let started = Instant::now();
    let out = mdp_with_client().args(["ingest", "--concurrency", "2"]).current_dir(&project).output().unwrap();
    let elapsed = started.elapsed();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(elapsed > Duration::from_secs(6), "the ingest should outlive several tokens, took {elapsed:?}");
    let issued =
        get_json(&format!("{}/_sandbox/oauth", sandbox.url))["issued_access_tokens"].as_u64().unwrap() - before;
    assert!(issued >= 4, "{issued} access tokens over {elapsed:?}: expired tokens were not refreshed");
    assert_matches_truth(&project, &sandbox, &["google_ads", "linkedin_ads"]);

    // Rotated refresh tokens were saved: the files changed, and a second run (which reads them) works.
    let rotated = [refresh_token(&project, "google_ads"), refresh_token(&project, "linkedin_ads")];
    assert_ne!(rotated[0], first_tokens[0]);
    assert_ne!(rotated[1], first_tokens[1]);
    let again = mdp_with_client().arg("ingest").current_dir(&project).output().unwrap();
    assert!(again.status.success(), "the saved refresh tokens work:\n{}", text(&again));

    // No token or client secret in any output or anywhere in the warehouse's raw payloads.
    let current = [refresh_token(&project, "google_ads"), refresh_token(&project, "linkedin_ads")];
    let everything = format!("{log}{}{shown}", text(&again));
    for secret in first_tokens.iter().chain(&rotated).chain(&current).map(String::as_str).chain([CLIENT_SECRET]) {
        assert!(!everything.contains(secret), "a secret was printed");
    }
    let leaked = query(
        &project,
        &format!(
            "SELECT count(*) FROM raw.google_ads__campaign_daily WHERE CAST(_mdp_payload AS VARCHAR) LIKE '%sbx-%' \
             OR CAST(_mdp_payload AS VARCHAR) LIKE '%{CLIENT_SECRET}%'"
        ),
    );
    assert_eq!(leaked[0][0].as_deref(), Some("0"));

    // Revoked at the platform: the run fails, saying to run `mdp auth`, and doctor says the same.
    post_json(&format!("{}/_sandbox/oauth/revoke", sandbox.url), serde_json::json!({}));
    let refused = mdp_with_client().arg("ingest").current_dir(&project).output().unwrap();
    let shown = text(&refused);
    assert!(!refused.status.success(), "{shown}");
    assert!(shown.contains("refused the refresh token") && shown.contains("run `mdp auth google_ads`"), "{shown}");
    assert!(shown.contains("run `mdp auth linkedin_ads`"), "{shown}");
    let doctor = mdp_with_client().arg("doctor").current_dir(&project).output().unwrap();
    assert!(!doctor.status.success());
    assert!(text(&doctor).contains("run `mdp auth google_ads`"), "{}", text(&doctor));
}

#[test]
fn mdp_auth_explains_what_it_cannot_do() {
    let sandbox = start_sandbox();
    let root = tempfile::tempdir().unwrap();
    let project = refreshing_project(root.path(), &sandbox);

    let meta = mdp_with_client().args(["auth", "meta_ads"]).current_dir(&project).output().unwrap();
    assert!(!meta.status.success());
    assert!(text(&meta).contains("system-user token"), "{}", text(&meta));

    // A refresh token kept in an environment variable cannot be written by mdp: say how to keep it in a file.
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        config
            .replace("refresh_token: { file: secrets/google_ads_refresh_token }", "refresh_token: { env: GOOGLE_RT }"),
    )
    .unwrap();
    let env = mdp_with_client().args(["auth", "google_ads"]).current_dir(&project).output().unwrap();
    assert!(!env.status.success());
    assert!(text(&env).contains("environment variable GOOGLE_RT, which mdp cannot write"), "{}", text(&env));

    let unknown = mdp_with_client().args(["auth", "bing"]).current_dir(&project).output().unwrap();
    assert!(text(&unknown).contains("no source named 'bing'"), "{}", text(&unknown));
}

/// Meta has no refresh grant: `mdp doctor` asks Meta (`debug_token`) what the token is and when it
/// expires — fine for a system user's that never does, a warning two weeks ahead, a failure once invalid.
#[test]
fn doctor_reads_a_meta_tokens_kind_and_expiry_from_debug_token() {
    let sandbox = start_sandbox();
    let root = tempfile::tempdir().unwrap();
    let project = project(root.path(), &sandbox);
    let line = |out: &std::process::Output| -> String {
        text(out)
            .lines()
            .find(|l| l.contains("source meta_ads") && l.contains("access token"))
            .unwrap_or_default()
            .to_string()
    };
    let doctor = mdp().arg("doctor").current_dir(&project).output().unwrap();
    assert!(line(&doctor).contains("a system user token that does not expire"), "{}", text(&doctor));

    let expiring = serde_json::json!({"access_token_ttl_secs": 3599, "rotate_refresh_tokens": false, "meta_token_expires_in_days": 5});
    post_json(&format!("{}/_sandbox/oauth", sandbox.url), expiring);
    let doctor = mdp().arg("doctor").current_dir(&project).output().unwrap();
    let shown = line(&doctor);
    assert!(
        shown.contains("a user token that expires") && shown.contains("(4 days)") && shown.contains("renew it"),
        "{}",
        text(&doctor)
    );
    assert!(doctor.status.success(), "a warning, not a failure:\n{}", text(&doctor));

    let expired = serde_json::json!({"access_token_ttl_secs": 3599, "rotate_refresh_tokens": false, "meta_token_expires_in_days": 0});
    post_json(&format!("{}/_sandbox/oauth", sandbox.url), expired);
    let doctor = mdp().arg("doctor").current_dir(&project).output().unwrap();
    assert!(!doctor.status.success());
    assert!(line(&doctor).contains("not valid (expired or revoked)"), "{}", text(&doctor));
    assert!(!text(&doctor).contains(TOKEN), "the token is never printed");
}

/// Google with a service account, as a team's scheduled runs use it: the key file downloaded from the
/// Cloud console is referenced in mdp.yml; `mdp doctor` says whose key signs; the ingest loads exact
/// totals; `mdp auth` explains there is no consent to give; impersonation without a key is refused
/// when mdp.yml loads.
#[test]
fn a_service_account_key_file_carries_a_google_ingest() {
    let sandbox = start_sandbox();
    let root = tempfile::tempdir().unwrap();
    let project = project(root.path(), &sandbox);
    let key = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = format!("{}/_sandbox/google/service_account_key", sandbox.url);
        reqwest::get(url).await.unwrap().text().await.unwrap()
    });
    std::fs::create_dir_all(project.join("secrets")).unwrap();
    std::fs::write(project.join("secrets/google-sa.json"), &key).unwrap();
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap().replace(
        "      access_token: { env: GOOGLE_ADS_ACCESS_TOKEN }\n",
        "      service_account_key: { file: secrets/google-sa.json }\n",
    );
    let config = disable(&disable(&disable(&config, "meta_ads"), "tiktok_ads"), "linkedin_ads");
    std::fs::write(&file, &config).unwrap();
    post_json(
        &format!("{}/_sandbox/oauth", sandbox.url),
        serde_json::json!({"access_token_ttl_secs": 2, "rotate_refresh_tokens": false}),
    );

    let doctor = mdp().arg("doctor").current_dir(&project).output().unwrap();
    let shown = text(&doctor);
    assert!(doctor.status.success(), "{shown}");
    assert!(
        shown.contains(&format!("access token: signed by the service account {}", mdp_sandbox::service_account::EMAIL)),
        "{shown}"
    );
    post_json(
        &format!("{}/_sandbox/faults", sandbox.url),
        serde_json::json!({"platform": "google_ads", "kind": "slow", "millis": 250, "count": 30}),
    );
    let ingest = mdp().arg("ingest").current_dir(&project).output().unwrap();
    let log = text(&ingest);
    assert!(ingest.status.success(), "{log}");
    assert_matches_truth(&project, &sandbox, &["google_ads"]);
    let grants = get_json(&format!("{}/_sandbox/oauth", sandbox.url))["service_account_grants"].as_u64().unwrap();
    assert!(grants >= 3, "a new signed grant as each 2 s token expired: {grants}");
    assert!(!log.contains("PRIVATE KEY") && !shown.contains("PRIVATE KEY"), "the key is never printed");

    let auth = mdp().args(["auth", "google_ads"]).current_dir(&project).output().unwrap();
    assert!(!auth.status.success());
    assert!(text(&auth).contains("authenticates as a service account"), "{}", text(&auth));

    // Impersonation belongs to a service account: with a user's token it is refused when mdp.yml loads.
    let user = config
        .replace(
            "      service_account_key: { file: secrets/google-sa.json }\n",
            "      access_token: { env: GOOGLE_ADS_ACCESS_TOKEN }\n",
        )
        .replace("    base_url:", "    options:\n      impersonated_email: ads@example.com\n    base_url:");
    std::fs::write(&file, user).unwrap();
    let refused = mdp().arg("doctor").current_dir(&project).output().unwrap();
    assert!(!refused.status.success());
    assert!(text(&refused).contains("impersonated_email is the user a service account acts as"), "{}", text(&refused));
}
