//! Connector specs: the README's walkthrough spec loads and registers its platform; every kind of
//! mistake is reported at its file and line with what to write instead.

use std::path::{Path, PathBuf};

use mdp_core::{Platform, SourceOptions, StreamKind};

/// The spec of the README's walkthrough ("Add a platform in an afternoon"), as written there.
fn readme_spec() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let start = readme.find("<!-- walkthrough: connectors/acme_ads.yml -->").expect("the README has the walkthrough");
    let block = &readme[start..];
    let body = &block[block.find("```yaml\n").unwrap() + 8..];
    body[..body.find("```").unwrap()].to_string()
}

fn errors(text: &str) -> Vec<String> {
    match mdp_spec::parse(Path::new("connectors/acme_ads.yml"), text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

/// The line of `needle`'s last line (a needle may span lines).
fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).expect("the needle is in the text") + needle.trim_end_matches('\n').len();
    text[..at].lines().count()
}

#[test]
fn the_readme_spec_loads_and_its_platform_becomes_known() {
    let text = readme_spec();
    assert_eq!(errors(&text), Vec::<String>::new());
    let dir = tempfile::tempdir().unwrap();
    let connectors = dir.path().join("connectors");
    std::fs::create_dir(&connectors).unwrap();
    std::fs::write(connectors.join("acme_ads.yml"), &text).unwrap();
    let platforms = mdp_spec::load_dir(&connectors).unwrap();
    let platform: Platform = "acme_ads".parse().expect("a registered spec's name parses");
    assert_eq!(platforms, vec![platform]);
    assert!(platform.is_declared());

    let kind = mdp_core::kind(platform);
    assert_eq!(kind.default_base_url, "https://ads.acme.example");
    assert_eq!(kind.default_lookback_days, 7);
    assert!(kind.credential("api_key").unwrap().required);
    let streams: Vec<(&str, StreamKind)> = kind.streams.iter().map(|s| (s.name, s.kind)).collect();
    assert_eq!(
        streams,
        [
            ("campaigns", StreamKind::Entity),
            ("ad_groups", StreamKind::Entity),
            ("ads", StreamKind::Entity),
            ("ad_daily", StreamKind::Daily)
        ]
    );
    assert_eq!(kind.stream("ad_daily").unwrap().max_window_days, 14);

    // Options: the declared ones with their defaults, a set one replacing it, an unknown one refused.
    let defaults = SourceOptions::defaults(platform);
    assert_eq!(defaults.conversion_definition(), "purchases / purchase_value_cents (7d_click)");
    let set = serde_json::json!({"attribution": "28d_click"});
    let serde_json::Value::Object(set) = set else { unreachable!() };
    assert_eq!(
        SourceOptions::parse(platform, set).unwrap().conversion_definition(),
        "purchases / purchase_value_cents (28d_click)"
    );
    let typo = serde_json::json!({"atribution": "1d_click"});
    let serde_json::Value::Object(typo) = typo else { unreachable!() };
    let refused = SourceOptions::parse(platform, typo).unwrap_err();
    assert!(refused[0].message.contains("did you mean 'attribution'"), "{:?}", refused);
    assert!(mdp_spec::get(platform)
        .unwrap()
        .place("streams.ad_daily.fields.spend")
        .ends_with(&format!("acme_ads.yml:{}", line_of(&text, "spend: { path: spend_micros"))));
}

#[test]
fn mistakes_are_reported_at_their_line_with_what_to_do() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (replace, with, the line holding, the message holds)
        ("    records: rows\n", "    recods: rows\n", "recods: rows", "unknown field `recods`"),
        (
            "path: /{{ api_version }}/accounts/{{ account.id }}/ads\n",
            "path: /{{ api_version }}/accounts/{{ acount.id }}/ads\n",
            "acount.id",
            "the template reads acount, which is not defined here; it may read account, api_version, options",
        ),
        (
            "      spend: { path: spend_micros, divide: 1000000 }\n",
            "      spend_usd: spend_micros\n",
            "spend_usd",
            "ad_daily has no column `spend_usd`",
        ),
        (
            "  credential: api_key\n",
            "  credential: apikey\n",
            "credential: apikey",
            "credential `apikey` is not declared",
        ),
        ("    max_window_days: 14\n", "", "  ad_daily:", "`max_window_days` is missing"),
        (
            "      id: id\n      name: name\n      status: state\n\n  ad_groups:",
            "      name: name\n      status: state\n\n  ad_groups:",
            "records: campaigns\n    fields:",
            "`id` is not mapped",
        ),
        ("      type: page\n", "      type: pages\n", "type: pages", "unknown variant `pages`"),
        ("name: acme_ads\n", "name: google_ads\n", "name: google_ads", "google_ads is a built-in platform"),
        ("{{ window.end | tojson }}", "{{ window.end | tojson }", "json: |", "not a valid template"),
    ];
    assert_mistakes("connectors/acme_ads.yml", &readme_spec(), cases);
}

/// Each case — (replace, with, the line holding, the message holds) — edits `spec` (where `replace` is
/// once) and is reported at that line of `file` with that message.
fn assert_mistakes(file: &str, spec: &str, cases: &[(&str, &str, &str, &str)]) {
    for (from, to, at, message) in cases {
        assert_eq!(spec.matches(from).count(), 1, "{from:?} is in the spec once");
        let text = spec.replacen(from, to, 1);
        let found: Vec<String> = match mdp_spec::parse(Path::new(file), &text) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        };
        let line = line_of(&text, at);
        assert!(
            found.iter().any(|e| e.starts_with(&format!("{file}:{line}:")) && e.contains(message)),
            "{from:?} → {to:?}: expected {message:?} at line {line}, got {found:#?}"
        );
    }
}

#[test]
fn a_folder_with_a_bad_spec_reports_it_and_registers_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let good = readme_spec().replace("name: acme_ads", "name: good_ads");
    std::fs::write(dir.path().join("good_ads.yml"), good).unwrap();
    std::fs::write(dir.path().join("bad_ads.yml"), "version: 1\nname: bad_ads\n").unwrap();
    // A spec whose name is not its file's: refused, naming the file to write.
    std::fs::write(dir.path().join("other.yml"), readme_spec().replace("name: acme_ads", "name: named_ads")).unwrap();
    std::fs::write(dir.path().join("README.txt"), "not a spec").unwrap();
    let errors = mdp_spec::load_dir(dir.path()).unwrap_err().to_string();
    let bad: PathBuf = dir.path().join("bad_ads.yml");
    assert!(errors.contains(&format!("{}:", bad.display())) && errors.contains("missing field"), "{errors}");
    assert!(errors.contains("must be named named_ads.yml"), "{errors}");
    assert!(!errors.contains("README"), "{errors}");
    assert!("good_ads".parse::<Platform>().is_ok(), "the valid spec is registered all the same");
    // A missing folder has no specs.
    assert_eq!(mdp_spec::load_dir(&dir.path().join("nothing")).unwrap(), Vec::new());
}

#[test]
fn every_built_in_spec_is_valid_and_named_after_its_file() {
    assert!(!mdp_spec::BUILTIN.is_empty());
    for (file, text) in mdp_spec::BUILTIN {
        let (spec, _) = mdp_spec::parse(Path::new(file), text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format!("{}.yml", spec.name), *file);
    }
    mdp_spec::register_builtin();
    let reddit: Platform = "reddit_ads".parse().expect("registered");
    assert_eq!(mdp_core::kind(reddit).default_lookback_days, 28);
    assert!(mdp_spec::get(reddit).unwrap().file.starts_with("<built-in>"));
}

#[test]
fn report_job_mistakes_are_reported_at_their_line() {
    let (_, amazon) = mdp_spec::BUILTIN.iter().find(|(file, _)| *file == "amazon_ads.yml").expect("built in");
    let cases: &[(&str, &str, &str, &str)] = &[
        ("running: [PENDING, PROCESSING]", "running: []", "running: []", "name the statuses of a job that is running"),
        ("done: [COMPLETED]", "done: [COMPLETED, PROCESSING]", "  job:", "status `PROCESSING` is in more than one"),
        (
            "path: /reporting/reports/{{ job.id }}",
            "path: /reporting/reports/{{ jobs.id }}",
            "jobs.id",
            "the template reads jobs, which is not defined here; it may read account, window, api_version, options, job",
        ),
        ("compression: gzip", "compression: brotli", "compression: brotli", "unknown variant `brotli`"),
        ("concurrency: 3", "concurrency: 0", "concurrency: 0", "between 1 and 20 reports of an account at once"),
        (
            "      json: '{\"maxResults\": 1000}'\n    paginator: { type: cursor, cursor: nextToken, param: nextToken, in: body }\n    records: campaigns",
            "    paginator: { type: cursor, cursor: nextToken, param: nextToken, in: body }\n    records: campaigns",
            "paginator: { type: cursor, cursor: nextToken, param: nextToken, in: body }",
            "a cursor sent `in: body` needs the request's JSON body",
        ),
        (
            "duplicate: { status: [425], path: detail, after: \"duplicate of : \" }",
            "duplicate: { status: [200], path: detail, after: \"\" }",
            "duplicate:",
            "the HTTP error statuses (4xx, 5xx) of the refusal",
        ),
    ];
    assert_mistakes("connectors/amazon_ads.yml", amazon, cases);
}

#[test]
fn amazon_needs_its_client_id_with_a_fixed_token_or_a_refresh_set() {
    use mdp_core::TokenGrant;
    mdp_spec::register_builtin();
    let amazon = mdp_core::kind("amazon_ads".parse().expect("registered"));
    let with = |names: &'static [&'static str]| amazon.token_grant(|name| names.contains(&name));
    // The client id is also the Amazon-Advertising-API-ClientId header: beside a fixed token it is no
    // half-written refresh set.
    assert_eq!(with(&["access_token", "client_id"]), Ok(Some(TokenGrant::AccessToken)));
    assert_eq!(with(&["client_id", "client_secret", "refresh_token"]), Ok(Some(TokenGrant::RefreshToken)));
    let partial = with(&["access_token", "client_id", "client_secret"]).unwrap_err();
    assert!(partial.contains("'refresh_token' is missing"), "{partial}");
    assert!(amazon.required_credentials().any(|c| c.name == "client_id"));
}

#[test]
fn parents_wildcards_and_csv_files_are_checked_at_their_line() {
    let builtin = |name: &str| mdp_spec::BUILTIN.iter().find(|(file, _)| *file == name).expect("built in").1;
    let snapchat: &[(&str, &str, &str, &str)] = &[
        (
            "    parents: ad_groups\n",
            "    parents: ads\n",
            "    records: ads\n    parents: ads",
            "'ads': an ad's campaign comes from the `ad_groups` stream",
        ),
        (" ad_group_id: ad.ad_squad_id }", " }", "    parents: ad_groups", "map `ad_group_id` to find it"),
        ("    explode: timeseries", "    explode: timeseries.*", "explode: timeseries.*", "read only in `records`"),
    ];
    assert_mistakes("connectors/snapchat_ads.yml", builtin("snapchat_ads.yml"), snapchat);
    let pinterest: &[(&str, &str, &str, &str)] = &[
        ("    records: \"*\"", "    decoder: csv\n    records: \"*\"", "    records: \"*\"", "leave `records` out"),
        (
            "    records: items\n    fields: { id: id, name: name, status: status }",
            "    decoder: csv\n    records: items\n    fields: { id: id, name: name, status: status }",
            "    decoder: csv",
            "`csv` reads report files: the stream needs a `job:`",
        ),
        (
            "    records: \"*\"",
            "    csv: { skip_lines: 1 }\n    records: \"*\"",
            "    csv: { skip_lines: 1 }",
            "describes a `decoder: csv` file",
        ),
        (
            "    records: \"*\"",
            "    decoder: csv\n    csv: { delimiter: \"x\" }",
            "    csv: { delimiter",
            "the delimiter is one of , ; | or a tab",
        ),
    ];
    assert_mistakes("connectors/pinterest_ads.yml", builtin("pinterest_ads.yml"), pinterest);
}

#[test]
fn hosts_parent_fan_out_and_maps_are_checked_at_their_line() {
    let (_, microsoft) = mdp_spec::BUILTIN.iter().find(|(file, _)| *file == "microsoft_ads.yml").expect("built in");
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "    for_each: campaigns\n",
            "    for_each: ads\n",
            "    for_each: ads",
            "ad groups are asked for per campaign",
        ),
        (
            "      host: campaign\n      path: /CampaignManagement/{{ api_version }}/Campaigns",
            "      host: campain\n      path: /CampaignManagement/{{ api_version }}/Campaigns",
            "      host: campain",
            "no host `campain` in `hosts` (it names campaign, customer)",
        ),
        (
            r#"      json: '{"AccountId": {{ account.id | tojson }}, "CampaignType": "Search"}'"#,
            r#"      json: '{"AccountId": {{ parent.id | tojson }}, "CampaignType": "Search"}'"#,
            r#"      json: '{"AccountId": {{ parent.id"#,
            "the template reads parent, which is not defined here",
        ),
        (
            "      path: TimeZone\n      map:",
            "      value: UTC\n      map:",
            "      map:",
            "`map` replaces the text read at a `path`",
        ),
        (
            "  customer: https://clientcenter.api.bingads.microsoft.com",
            "  customer: clientcenter.api.bingads.microsoft.com",
            "  customer: clientcenter",
            "is not a base URL",
        ),
    ];
    assert_mistakes("connectors/microsoft_ads.yml", microsoft, cases);
}

#[test]
fn an_oauth1_spec_names_its_four_credentials() {
    let spec = readme_spec();
    let start = spec.find("auth:").expect("the README spec has auth");
    let end = start + spec[start..].find("\n\n").expect("auth ends at a blank line");
    let oauth1 = "auth:\n  type: oauth1\n  consumer_key: api_key\n  consumer_secret: api_secret\n  token: api_key\n  \
                  token_secret: user_secret";
    let text = format!("{}{oauth1}{}", &spec[..start], &spec[end..]);
    let found = errors(&text);
    // The README spec declares `api_key` only: the other three are named, each at its line.
    for (name, key) in [("api_secret", "consumer_secret"), ("user_secret", "token_secret")] {
        let line = line_of(&text, &format!("{key}: {name}"));
        assert!(
            found.iter().any(|e| e.contains(&format!("acme_ads.yml:{line}:")) && e.contains(name)),
            "{name} at line {line}: {found:#?}"
        );
    }
    assert!(!found.iter().any(|e| e.contains("consumer_key")), "api_key is declared: {found:#?}");
}

#[test]
fn per_day_rows_are_dated_by_index_and_only_daily() {
    let (_, reddit) = mdp_spec::BUILTIN.iter().find(|(file, _)| *file == "reddit_ads.yml").expect("built in");
    let cases: &[(&str, &str, &str, &str)] = &[
        ("    parents: ads\n", "    parents: ads\n    per_day: true\n", "      date: date", "leave `date` out"),
        (
            "    records: data\n    fields: { id: id, name: name, status: configured_status }",
            "    records: data\n    per_day: true\n    fields: { id: id, name: name, status: configured_status }",
            "    per_day: true",
            "only the daily stream reads values per day",
        ),
    ];
    assert_mistakes("connectors/reddit_ads.yml", reddit, cases);
    // Left out, `date` is no missing column.
    let dated_by_index =
        reddit.replace("    parents: ads\n", "    parents: ads\n    per_day: true\n").replace("      date: date\n", "");
    mdp_spec::parse(Path::new("connectors/reddit_ads.yml"), &dated_by_index).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn batches_second_account_requests_and_rate_limits_are_checked_at_their_line() {
    let (_, x) = mdp_spec::BUILTIN.iter().find(|(file, _)| *file == "x_ads.yml").expect("built in");
    let cases: &[(&str, &str, &str, &str)] = &[
        ("      size: 20\n", "      size: 0\n", "      size: 0", "a batch holds at least 1 id"),
        ("      id: entity_id\n", "", "    batch:", "`id` is missing"),
        (
            "      records: data\n      id: entity_id\n",
            "      records: data\n      id: entity_id\n      of: ads\n",
            "    batch:",
            "write one of `of: ads`",
        ),
        (
            r#"        entity_ids: "{{ batch.ids | join(',') }}""#,
            r#"        entity_ids: "all""#,
            "    batch:",
            "never reads `batch.ids`",
        ),
        (
            "          entity: PROMOTED_TWEET\n          start_time",
            "          entity: \"{{ batch.ids }}\"\n          start_time",
            "          entity: \"{{ batch.ids }}\"",
            "the template reads batch, which is not defined here",
        ),
        (
            "    fields:\n      currency: currency\n",
            "    fields:\n      currency: currency\n      timezone: timezone\n",
            "      timezone: timezone",
            "`timezone` is mapped by both account requests",
        ),
        (
            "    fields:\n      currency: currency\n",
            "    fields:\n      name: name\n",
            "  record: data\n  fields:",
            "`currency` is not mapped",
        ),
        ("  per_seconds: 900\n", "", "rate_limit:", "write both `requests` and `per_seconds`"),
        (
            "    path: /{{ api_version }}/accounts/{{ account.id }}\n  record: data",
            "    path: /{{ api_version }}/accounts/{{ account.id }}\n    form: { a: b }\n  record: data",
            "    form: { a: b }",
            "a form body needs `method: POST`",
        ),
        ("  requests: 250\n", "  requests: 0\n", "  requests: 0", "at least 1 request"),
        (
            "  reset_headers: [x-account-rate-limit-reset, x-rate-limit-reset]",
            "  reset_headers: [x rate limit reset]",
            "  reset_headers",
            "'x rate limit reset' is not an HTTP header name",
        ),
    ];
    assert_mistakes("connectors/x_ads.yml", x, cases);
}
