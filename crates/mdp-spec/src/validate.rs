//! A spec's text → a validated [`ConnectorSpec`], or every problem at its line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use mdp_core::locate::Outline;

use crate::model::{
    Auth, BatchDef, ConnectorSpec, CursorIn, Decoder, ErrorRule, FieldExpr, HeaderValueDef, JobDef, Paginator,
    RequestDef,
};
use crate::{SpecError, SpecErrors, STREAMS};

/// The harmonized columns a stream maps: (required, optional).
fn columns(stream: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match stream {
        "account" => (&["currency", "timezone"], &["name", "status"]),
        "campaigns" => (&["id", "name"], &["status"]),
        "ad_groups" => (&["id", "name"], &["status", "campaign_id"]),
        "ads" => (&["id", "name"], &["status", "campaign_id", "ad_group_id"]),
        _ => (
            &["date", "ad_id", "impressions", "clicks", "spend", "conversions", "conversion_value"],
            &["campaign_id", "ad_group_id", "video_views", "likes", "comments", "shares"],
        ),
    }
}

struct Checker<'a> {
    file: &'a Path,
    outline: Outline,
    errors: Vec<SpecError>,
}

impl Checker<'_> {
    fn error(&mut self, key: &str, message: impl Into<String>) {
        let (line, column) = self.outline.locate(key).map_or((0, 0), |p| (p.line, p.column));
        self.errors.push(SpecError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// A template compiles and reads only the variables it may.
    fn template(&mut self, key: &str, source: &str, allowed: &[&str]) {
        let env = minijinja::Environment::new();
        match env.template_from_str(source) {
            Err(e) => {
                let at = e.line().filter(|line| *line > 1).map(|line| format!(" (line {line} of the template)"));
                self.error(
                    key,
                    format!("not a valid template: {}{}", e.detail().unwrap_or("syntax error"), at.unwrap_or_default()),
                );
            }
            Ok(template) => {
                let mut unknown: Vec<String> = template
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|v| !allowed.contains(&v.as_str()))
                    .collect();
                unknown.sort();
                if !unknown.is_empty() {
                    self.error(
                        key,
                        format!(
                            "the template reads {}, which {} not defined here; it may read {}",
                            unknown.join(", "),
                            if unknown.len() == 1 { "is" } else { "are" },
                            allowed.join(", ")
                        ),
                    );
                }
            }
        }
    }

    fn request(&mut self, key: &str, request: &RequestDef, allowed: &[&str]) {
        self.template(&format!("{key}.path"), &request.path, allowed);
        for (name, value) in &request.query {
            self.template(&format!("{key}.query.{name}"), value, allowed);
        }
        for (name, value) in &request.headers {
            self.template(&format!("{key}.headers.{name}"), value, allowed);
            if !is_header_name(name) {
                self.error(&format!("{key}.headers.{name}"), format!("'{name}' is not an HTTP header name"));
            }
        }
        if let Some(json) = &request.json {
            self.template(&format!("{key}.json"), json, allowed);
            if request.method == crate::model::Method::Get {
                self.error(&format!("{key}.json"), "a JSON body needs `method: POST`");
            }
        }
        for (name, value) in &request.form {
            self.template(&format!("{key}.form.{name}"), value, allowed);
        }
        if !request.form.is_empty() {
            if request.method == crate::model::Method::Get {
                self.error(&format!("{key}.form"), "a form body needs `method: POST`");
            }
            if request.json.is_some() {
                self.error(&format!("{key}.form"), "a request has one body: `json` or `form`, not both");
            }
        }
    }

    fn path(&mut self, key: &str, path: &str) {
        if path.trim().is_empty() || path.split('.').any(|segment| segment.trim().is_empty()) {
            self.error(
                key,
                format!("'{path}' is not a field path; write fields separated by dots, e.g. metrics.spend"),
            );
        } else if path.split('.').any(|segment| segment == "*") && !key.ends_with(".records") {
            self.error(key, format!("'{path}': `*` (every value of an object) is read only in `records`"));
        }
    }

    fn fields(&mut self, key: &str, stream: &str, fields: &BTreeMap<String, FieldExpr>) {
        self.fields_besides(key, stream, fields, &BTreeMap::new());
    }

    /// As [`Checker::fields`], where `elsewhere` maps some columns already (an account's second request).
    fn fields_besides(
        &mut self,
        key: &str,
        stream: &str,
        fields: &BTreeMap<String, FieldExpr>,
        elsewhere: &BTreeMap<String, FieldExpr>,
    ) {
        let (required, optional) = columns(stream);
        for column in required {
            if !fields.contains_key(*column) && !elsewhere.contains_key(*column) {
                self.error(
                    &format!("{key}.fields"),
                    format!(
                        "`{column}` is not mapped; every {stream} record needs it (write `{column}: <field path>`)"
                    ),
                );
            }
        }
        for (column, expr) in fields {
            let at = format!("{key}.fields.{column}");
            if !required.contains(&column.as_str()) && !optional.contains(&column.as_str()) {
                let all: Vec<&str> = required.iter().chain(optional).copied().collect();
                self.error(&at, format!("{stream} has no column `{column}`; its columns are {}", all.join(", ")));
                continue;
            }
            match expr {
                FieldExpr::Path(path) => self.path(&at, path),
                FieldExpr::Rich(rich) => {
                    let given = [rich.path.is_some(), rich.sum.is_some(), rich.pick.is_some(), rich.value.is_some()];
                    if given.iter().filter(|g| **g).count() != 1 {
                        self.error(&at, "write exactly one of path, sum, pick or value");
                    }
                    if let Some(path) = &rich.path {
                        self.path(&format!("{at}.path"), path);
                    }
                    for path in rich.sum.iter().flatten() {
                        self.path(&format!("{at}.sum"), path);
                    }
                    if let Some(pick) = &rich.pick {
                        self.path(&format!("{at}.pick.array"), &pick.array);
                        self.path(&format!("{at}.pick.key"), &pick.key);
                        self.path(&format!("{at}.pick.value"), &pick.value);
                        self.template(&format!("{at}.pick.equals"), &pick.equals, &["options"]);
                    }
                    if rich.map.is_some() && rich.path.is_none() {
                        self.error(&format!("{at}.map"), "`map` replaces the text read at a `path`: write one");
                    }
                    if rich.divide == Some(0) {
                        self.error(&format!("{at}.divide"), "cannot divide by 0");
                    }
                    if rich.format.is_some() && column != "date" {
                        self.error(&format!("{at}.format"), "`format` reads dates: only `date` takes it");
                    }
                    if let Some(format) = &rich.format {
                        let mut items = chrono::format::StrftimeItems::new(format);
                        if items.any(|item| matches!(item, chrono::format::Item::Error)) {
                            self.error(
                                &format!("{at}.format"),
                                format!("'{format}' is not a chrono date format such as %Y%m%d"),
                            );
                        }
                    }
                }
            }
        }
    }

    fn paginator(&mut self, key: &str, paginator: &Paginator) {
        match paginator {
            Paginator::None => {}
            Paginator::Cursor { cursor, param, .. } => {
                self.path(&format!("{key}.cursor"), cursor);
                if param.trim().is_empty() {
                    self.error(&format!("{key}.param"), "the parameter the cursor is sent in cannot be empty");
                }
            }
            Paginator::NextUrl { next_url } => self.path(&format!("{key}.next_url"), next_url),
            Paginator::Page { size, total_pages, .. } => {
                if *size == 0 {
                    self.error(&format!("{key}.size"), "a page holds at least 1 record");
                }
                if let Some(path) = total_pages {
                    self.path(&format!("{key}.total_pages"), path);
                }
            }
            Paginator::Offset { limit, .. } => {
                if *limit == 0 {
                    self.error(&format!("{key}.limit"), "a page holds at least 1 record");
                }
            }
        }
    }

    fn job(&mut self, key: &str, job: &JobDef, allowed: &[&str], paginator: &Paginator) {
        if !matches!(paginator, Paginator::None) {
            self.error(key, "a report job's file is read whole: leave `paginator` out");
        }
        self.path(&format!("{key}.id"), &job.id);
        self.path(&format!("{key}.status"), &job.status);
        self.path(&format!("{key}.url"), &job.url);
        if let Some(message) = &job.message {
            self.path(&format!("{key}.message"), message);
        }
        let mut allowed = allowed.to_vec();
        allowed.push("job");
        self.request(&format!("{key}.poll"), &job.poll, &allowed);
        for (list, statuses) in [("running", &job.running), ("done", &job.done)] {
            if statuses.is_empty() {
                self.error(&format!("{key}.{list}"), format!("name the statuses of a job that is {list}"));
            }
        }
        let mut seen = BTreeSet::new();
        for status in job.running.iter().chain(&job.done).chain(&job.failed) {
            if !seen.insert(status) {
                self.error(key, format!("status `{status}` is in more than one of running, done and failed"));
            }
        }
        if job.poll_seconds == 0 {
            self.error(&format!("{key}.poll_seconds"), "wait at least 1 second between polls");
        }
        if !(1..=20).contains(&job.concurrency) {
            self.error(&format!("{key}.concurrency"), "between 1 and 20 reports of an account at once");
        }
        if job.timeout_minutes == 0 {
            self.error(&format!("{key}.timeout_minutes"), "give a job at least 1 minute");
        }
        if let Some(duplicate) = &job.duplicate {
            let at = format!("{key}.duplicate");
            if duplicate.status.is_empty() || duplicate.status.iter().any(|s| !(400..=599).contains(s)) {
                self.error(&format!("{at}.status"), "the HTTP error statuses (4xx, 5xx) of the refusal");
            }
            self.path(&format!("{at}.path"), &duplicate.path);
            if duplicate.after.is_empty() {
                self.error(&format!("{at}.after"), "the text the job's id follows cannot be empty");
            }
        }
    }

    fn batch(&mut self, key: &str, batch: &BatchDef, daily: bool, request: &RequestDef) {
        if !daily {
            self.error(key, "only the daily stream is asked for in batches of ids");
            return;
        }
        if batch.size == 0 {
            self.error(&format!("{key}.size"), "a batch holds at least 1 id");
        }
        match (&batch.of, &batch.request) {
            (Some(of), None) if of != "ads" => self.error(
                &format!("{key}.of"),
                format!("'{of}': the daily stream is read by ad, so its batches are of `ads`"),
            ),
            (Some(_), None) => {
                if batch.id.is_some() || !batch.records.is_empty() {
                    self.error(key, "`records` and `id` read the answer of a batch `request`; `of: ads` has none");
                }
            }
            (None, Some(list)) => {
                self.request(&format!("{key}.request"), list, &["account", "window", "api_version", "options"]);
                if !batch.records.is_empty() {
                    self.path(&format!("{key}.records"), &batch.records);
                }
                match &batch.id {
                    Some(id) => self.path(&format!("{key}.id"), id),
                    None => self.error(key, "`id` is missing: where each listed entity's id is (`entity_id`)"),
                }
            }
            _ => self.error(
                key,
                "write one of `of: ads` (every ad of the account) or `request:` (the entities a request lists for \
                 the window)",
            ),
        }
        let mut reads = vec![request.path.as_str()];
        reads.extend(request.query.values().map(String::as_str));
        reads.extend(request.json.as_deref());
        if !reads.iter().any(|template| template.contains("batch")) {
            self.error(
                key,
                "the stream's request never reads `batch.ids`: every batch would ask for the same thing (send the \
                 ids, e.g. `entity_ids: \"{{ batch.ids | join(',') }}\"`)",
            );
        }
    }

    fn error_rule(&mut self, key: &str, rule: &ErrorRule) {
        if rule.status.is_empty() && rule.body_path.is_none() {
            self.error(key, "a rule needs `status:` or `body_path:` (or both), or it would match every answer");
        }
        if (!rule.equals.is_empty() || !rule.not_equals.is_empty() || rule.contains.is_some())
            && rule.body_path.is_none()
        {
            self.error(key, "`equals`, `not_equals` and `contains` test the field at `body_path`; add it");
        }
        if let Some(path) = &rule.wait_path {
            self.path(&format!("{key}.wait_path"), path);
        }
        for status in &rule.status {
            if !(100..=599).contains(status) {
                self.error(&format!("{key}.status"), format!("{status} is not an HTTP status"));
            }
        }
    }
}

pub(crate) fn parse(file: &Path, text: &str) -> Result<(ConnectorSpec, BTreeMap<String, usize>), SpecErrors> {
    let outline = Outline::new(text);
    let spec: ConnectorSpec = match serde_yaml::from_str(text) {
        Ok(spec) => spec,
        Err(e) => {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let key = if line > 0 { outline.path_at_line(line).unwrap_or_default().to_string() } else { String::new() };
            let message = e.to_string();
            // serde_yaml appends " at line L column C": the place is shown in front already.
            let message = message.split(" at line ").next().unwrap_or(&message).to_string();
            return Err(SpecErrors(vec![SpecError { file: file.to_path_buf(), line, column, key, message }]));
        }
    };
    let lines = outline.entries().map(|(path, position)| (path.to_string(), position.line)).collect();
    let mut check = Checker { file, outline, errors: Vec::new() };

    if spec.version != 1 {
        check.error("version", format!("this mdp reads spec version 1, not {}", spec.version));
    }
    let name_ok = spec.name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && spec.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        check.error(
            "name",
            format!("'{}' is not a platform name: lowercase letters, digits and _, e.g. reddit_ads", spec.name),
        );
    }
    if mdp_core::Platform::ALL.iter().any(|p| p.as_str() == spec.name) {
        check.error("name", format!("{} is a built-in platform of mdp; name yours differently", spec.name));
    }
    for (key, url) in [("base_url", &spec.base_url), ("docs_url", &spec.docs_url)] {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            check.error(key, format!("'{url}' is not an http(s) URL"));
        }
    }
    if spec.lookback_days > 400 {
        check.error("lookback_days", "at most 400 days");
    }
    if spec.lag_days > 30 {
        check.error("lag_days", "at most 30 days (a platform further behind is a backfill to schedule, not a lag)");
    }
    if spec.api_version.trim().is_empty() {
        check.error("api_version", "cannot be empty (write the version the spec was written for)");
    }

    let mut credentials = BTreeSet::new();
    for (i, credential) in spec.credentials.iter().enumerate() {
        if !credentials.insert(credential.name.as_str()) {
            check.error(
                &format!("credentials[{i}].name"),
                format!("credential `{}` is declared twice", credential.name),
            );
        }
    }
    let declared = |check: &mut Checker, key: &str, name: &str| {
        if !credentials.contains(name) {
            check.error(key, format!("credential `{name}` is not declared under `credentials:`"));
        }
    };
    match &spec.auth {
        Auth::None => {}
        Auth::Bearer { credential, oauth } => {
            declared(&mut check, "auth.credential", credential);
            if oauth.is_some() && credential != mdp_core::ACCESS_TOKEN {
                check.error("auth.credential", "a token renewed with `oauth:` is the credential `access_token`");
            }
            if let Some(oauth) = oauth {
                for (key, url) in
                    [("auth.oauth.token_url", &oauth.token_url), ("auth.oauth.authorize_url", &oauth.authorize_url)]
                {
                    if !url.starts_with("https://") && !url.starts_with("http://") {
                        check.error(key, format!("'{url}' is not an http(s) URL"));
                    }
                }
            }
        }
        Auth::Header { header, credential, .. } => {
            declared(&mut check, "auth.credential", credential);
            if header.trim().is_empty() {
                check.error("auth.header", "the header's name cannot be empty");
            }
        }
        Auth::OAuth1 { consumer_key, consumer_secret, token, token_secret } => {
            declared(&mut check, "auth.consumer_key", consumer_key);
            declared(&mut check, "auth.consumer_secret", consumer_secret);
            declared(&mut check, "auth.token", token);
            declared(&mut check, "auth.token_secret", token_secret);
        }
        Auth::Basic { username, password } => {
            declared(&mut check, "auth.username", username);
            declared(&mut check, "auth.password", password);
        }
    }
    let mut options = BTreeSet::new();
    for (i, option) in spec.options.iter().enumerate() {
        if !options.insert(option.name.as_str()) {
            check.error(&format!("options[{i}].name"), format!("option `{}` is declared twice", option.name));
        }
    }
    for (name, value) in &spec.headers {
        let key = format!("headers.{name}");
        match value {
            HeaderValueDef::Template(template) => {
                check.template(&key, template, &["account", "api_version", "options"])
            }
            HeaderValueDef::Credential(header) => declared(&mut check, &key, &header.credential),
        }
    }
    for (i, rule) in spec.errors.iter().enumerate() {
        check.error_rule(&format!("errors[{i}]"), rule);
    }
    if let Some(limit) = &spec.rate_limit {
        match (limit.requests, limit.per_seconds) {
            (Some(0), _) => check.error("rate_limit.requests", "at least 1 request"),
            (_, Some(0)) => check.error("rate_limit.per_seconds", "at least 1 second"),
            (Some(_), None) | (None, Some(_)) => {
                check.error("rate_limit", "write both `requests` and `per_seconds` (e.g. 250 requests per 900 seconds)")
            }
            _ => {}
        }
        for header in limit.reset_headers.iter().filter(|header| !is_header_name(header)) {
            check.error("rate_limit.reset_headers", format!("'{header}' is not an HTTP header name"));
        }
    }

    for (name, url) in &spec.hosts {
        let host = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).unwrap_or_default();
        if host.is_empty() || host.contains(char::is_whitespace) || host.ends_with('/') {
            check.error(&format!("hosts.{name}"), format!("'{url}' is not a base URL (https://host, no trailing /)"));
        }
    }
    let mut requests = vec![("account.request".to_string(), &spec.account.request)];
    if let Some(also) = &spec.account.also {
        requests.push(("account.also.request".to_string(), &also.request));
    }
    for (name, stream) in &spec.streams {
        requests.push((format!("streams.{name}.request"), &stream.request));
        if let Some(job) = &stream.job {
            requests.push((format!("streams.{name}.job.poll"), &job.poll));
        }
        if let Some(list) = stream.batch.as_ref().and_then(|batch| batch.request.as_ref()) {
            requests.push((format!("streams.{name}.batch.request"), list));
        }
    }
    for (key, request) in requests {
        if let Some(host) = request.host.as_deref().filter(|host| !spec.hosts.contains_key(*host)) {
            let known: Vec<&str> = spec.hosts.keys().map(String::as_str).collect();
            let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            check.error(&format!("{key}.host"), format!("no host `{host}` in `hosts` (it names {known})"));
        }
    }
    check.request("account.request", &spec.account.request, &["account", "api_version", "options"]);
    match &spec.account.also {
        Some(also) => {
            check.request("account.also.request", &also.request, &["account", "api_version", "options"]);
            if let Some(record) = &also.record {
                check.path("account.also.record", record);
            }
            check.fields_besides("account", "account", &spec.account.fields, &also.fields);
            check.fields_besides("account.also", "account", &also.fields, &spec.account.fields);
            for column in also.fields.keys().filter(|column| spec.account.fields.contains_key(*column)) {
                check.error(
                    &format!("account.also.fields.{column}"),
                    format!("`{column}` is mapped by both account requests; keep one"),
                );
            }
        }
        None => check.fields("account", "account", &spec.account.fields),
    }

    for name in spec.streams.keys() {
        if !STREAMS.contains(&name.as_str()) {
            check.error(
                &format!("streams.{name}"),
                format!("mdp has no stream `{name}`; a spec defines {}", STREAMS.join(", ")),
            );
        }
    }
    for name in STREAMS {
        let Some(stream) = spec.streams.get(name) else {
            check.error(
                "streams",
                format!("stream `{name}` is missing: a spec defines {} (the marts need each)", STREAMS.join(", ")),
            );
            continue;
        };
        let key = format!("streams.{name}");
        let daily = name == "ad_daily";
        match (daily, stream.max_window_days) {
            (true, None) => {
                check.error(&key, "`max_window_days` is missing: the longest date range one request may ask for")
            }
            (true, Some(days)) if !(1..=400).contains(&days) => {
                check.error(&format!("{key}.max_window_days"), "between 1 and 400 days")
            }
            (false, Some(_)) => {
                check.error(&format!("{key}.max_window_days"), "only the daily stream reads date windows")
            }
            _ => {}
        }
        let allowed: &[&str] = match (daily, &stream.for_each) {
            (true, _) if stream.batch.is_some() => &["account", "window", "api_version", "options", "batch"],
            (true, _) => &["account", "window", "api_version", "options"],
            (false, Some(_)) => &["account", "api_version", "options", "parent"],
            (false, None) => &["account", "api_version", "options"],
        };
        match (name, stream.for_each.as_deref()) {
            (_, None) | ("ad_groups", Some("campaigns")) | ("ads", Some("campaigns" | "ad_groups")) => {}
            (_, Some(parent)) => check.error(
                &format!("{key}.for_each"),
                format!(
                    "'{parent}': ad groups are asked for per campaign (`for_each: campaigns`), ads per campaign or \
                     ad group; {name} are not asked for per parent"
                ),
            ),
        }
        check.request(&format!("{key}.request"), &stream.request, allowed);
        check.paginator(&format!("{key}.paginator"), &stream.paginator);
        if matches!(&stream.paginator, Paginator::Cursor { location: CursorIn::Body, .. })
            && stream.request.json.is_none()
        {
            check
                .error(&format!("{key}.paginator"), "a cursor sent `in: body` needs the request's JSON body (`json:`)");
        }
        match (&stream.job, daily) {
            (Some(job), true) => check.job(&format!("{key}.job"), job, allowed, &stream.paginator),
            (Some(_), false) => check.error(
                &format!("{key}.job"),
                "only the daily stream reads reports; entity lists are read page by page",
            ),
            (None, _) => {}
        }
        if !stream.records.is_empty() {
            check.path(&format!("{key}.records"), &stream.records);
        }
        match (stream.decoder, &stream.csv) {
            (Decoder::Csv, _) if stream.job.is_none() => check.error(
                &format!("{key}.decoder"),
                "`csv` reads report files: the stream needs a `job:` (API pages are JSON or JSONL)",
            ),
            (Decoder::Csv, _) if !stream.records.is_empty() => {
                check.error(&format!("{key}.records"), "a CSV file's records are its rows: leave `records` out")
            }
            (Decoder::Csv, Some(csv)) if !matches!(csv.delimiter.as_str(), "," | ";" | "\t" | "|") => check.error(
                &format!("{key}.csv.delimiter"),
                format!("'{}': the delimiter is one of , ; | or a tab", csv.delimiter.escape_default()),
            ),
            (Decoder::Json | Decoder::Jsonl, Some(_)) => {
                check.error(&format!("{key}.csv"), "`csv:` describes a `decoder: csv` file; this stream's is JSON")
            }
            _ => {}
        }
        if let Some(explode) = &stream.explode {
            check.path(&format!("{key}.explode"), explode);
        }
        if let Some(batch) = &stream.batch {
            check.batch(&format!("{key}.batch"), batch, daily, &stream.request);
        }
        if stream.per_day {
            if !daily {
                check.error(&format!("{key}.per_day"), "only the daily stream reads values per day");
            } else if stream.fields.contains_key("date") {
                check.error(
                    &format!("{key}.fields.date"),
                    "`per_day` rows are dated by their index in the arrays (the window's first day + index): leave \
                     `date` out",
                );
            }
        }
        let mut fields = stream.fields.clone();
        if daily && stream.per_day {
            // Dated by index: `date` counts as mapped.
            fields.entry("date".to_string()).or_insert_with(|| FieldExpr::Path("date".to_string()));
        }
        check.fields(&key, name, &fields);
        // The daily stream's missing parents come from the ads, an ad's missing campaign from its ad group.
        match (&stream.parents, name) {
            (Some(parents), "ad_daily") if parents != "ads" => check.error(
                &format!("{key}.parents"),
                format!("'{parents}': the daily stream's parents come from the `ads` stream"),
            ),
            (Some(parents), "ads") if parents != "ad_groups" => check.error(
                &format!("{key}.parents"),
                format!("'{parents}': an ad's campaign comes from the `ad_groups` stream"),
            ),
            (Some(_), "ads") if !stream.fields.contains_key("ad_group_id") => check.error(
                &format!("{key}.parents"),
                "an ad's campaign comes from its ad group: map `ad_group_id` to find it",
            ),
            (Some(_), "campaigns" | "ad_groups") => check.error(
                &format!("{key}.parents"),
                "only the daily stream (from `ads`) and `ads` (from `ad_groups`) take parents",
            ),
            _ => {}
        }
    }

    if check.errors.is_empty() {
        Ok((spec, lines))
    } else {
        Err(SpecErrors(check.errors))
    }
}

/// Whether `name` is a valid HTTP header name (RFC 9110 token characters).
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}
