//! The connector spec as written: serde types, every key documented (README "Add a platform in an
//! afternoon" shows them in use). Unknown keys are refused, so a typo is an error at its line, not a
//! silently ignored setting.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One `connectors/<name>.yml` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSpec {
    /// The spec format's version; `1`.
    pub version: u32,
    /// The platform's name in mdp.yml (`platform:`), in raw table and model names and in the marts'
    /// `platform` column: lowercase, digits and underscores, e.g. `reddit_ads`.
    pub name: String,
    /// How people write the platform's name (`Reddit Ads`).
    pub title: String,
    /// The API reference the spec was written from.
    pub docs_url: String,
    /// Scheme and host (and path prefix) of the API; a source's `base_url` overrides it.
    pub base_url: String,
    /// The API version requested by default (`{{ api_version }}` in templates); a source's
    /// `api_version` overrides it.
    pub api_version: String,
    /// Other hosts of the same API, by name (Microsoft Advertising: `campaign:
    /// https://campaign.api.bingads.microsoft.com`); a request names one with `host:`. Credentials go to
    /// them as to `base_url`. A source that sets its own `base_url` (a proxy, an imitation) is served
    /// every host there.
    #[serde(default)]
    pub hosts: BTreeMap<String, String>,
    /// Days re-read on every incremental run because the platform restates them.
    pub lookback_days: u32,
    /// Days before the account's today whose data the API does not have yet (a report that refuses
    /// today, or fills it the next day): daily windows end that many days back. 0 by default.
    #[serde(default)]
    pub lag_days: u32,
    /// What a source on this platform counts as conversions, as written on every raw row
    /// (`conversion_definition`); `{option}` is replaced by that option's value.
    #[serde(default)]
    pub conversion_label: Option<String>,
    /// The credentials a source configures under `credentials:`.
    #[serde(default)]
    pub credentials: Vec<CredentialDef>,
    /// The keys a source may set under `options:`, each with its default (`{{ options.<name> }}`).
    #[serde(default)]
    pub options: Vec<OptionDef>,
    /// How requests are authorized.
    pub auth: Auth,
    /// Headers every request carries: a template over `account`, `api_version` and `options`
    /// (`"{{ account.id }}"`: Amazon's profile scope) or a credential.
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValueDef>,
    /// How answers are classified beyond HTTP's own rules (429 and 5xx retried, 401 an auth error, 404
    /// not found, other non-2xx failures): the platform's error envelopes, first match wins.
    #[serde(default)]
    pub errors: Vec<ErrorRule>,
    /// How fast a source may send, and where a refusal says when to come back.
    #[serde(default)]
    pub rate_limit: Option<RateLimitDef>,
    /// The request that describes one account: its currency and time zone.
    pub account: AccountDef,
    /// `campaigns`, `ad_groups`, `ads` (entity snapshots) and `ad_daily` (daily performance).
    pub streams: BTreeMap<String, StreamDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialDef {
    pub name: String,
    #[serde(default = "yes")]
    pub required: bool,
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionDef {
    pub name: String,
    /// The value when a source does not set it (text; numbers are written as text to templates).
    pub default: String,
    pub description: String,
}

fn yes() -> bool {
    true
}

/// How a request is authorized. A credential is only ever sent in a header marked sensitive (URLs
/// appear in errors and logs).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// No authorization (a public or proxied API).
    None,
    /// `Authorization: Bearer <credential>`. With `oauth:`, the credential `access_token` is renewed
    /// from `client_id`, `client_secret` and `refresh_token` at `token_url` (a rotated refresh token
    /// is saved back to its file).
    Bearer {
        #[serde(default = "access_token")]
        credential: String,
        #[serde(default)]
        oauth: Option<OAuthDef>,
    },
    /// `<header>: <prefix><credential>` (an API key).
    Header {
        header: String,
        credential: String,
        #[serde(default)]
        prefix: String,
    },
    /// `Authorization: Basic base64(<username>:<password>)`, both credentials.
    Basic { username: String, password: String },
    /// OAuth 1.0a user context (X's Ads API): every request signed with HMAC-SHA1 over its method, URL
    /// and query, from four credentials (the app's consumer key and secret, the user's token and secret).
    #[serde(rename = "oauth1")]
    OAuth1 { consumer_key: String, consumer_secret: String, token: String, token_secret: String },
}

fn access_token() -> String {
    mdp_core::ACCESS_TOKEN.to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthDef {
    /// Where refresh grants (and `mdp auth`'s code exchange) are posted.
    pub token_url: String,
    /// Where a user consents (`mdp auth`).
    pub authorize_url: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How the client authenticates at `token_url`: `body` (client_id and client_secret as form fields,
    /// the default) or `basic` (HTTP Basic, as Reddit and Pinterest require).
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Extra query parameters of the consent URL (Reddit issues a refresh token only with
    /// `duration: permanent`).
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    Body,
    Basic,
}

/// A header's value: a template, or a credential sent as written (marked sensitive).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum HeaderValueDef {
    Template(String),
    Credential(CredentialHeader),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialHeader {
    pub credential: String,
    #[serde(default)]
    pub prefix: String,
}

/// The platform's rate limit, kept by the client (X: 250 stats requests per 15 minutes per user).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitDef {
    /// At most this many requests of a source (one set of credentials) ...
    #[serde(default)]
    pub requests: Option<u32>,
    /// ... in any this many seconds: a request that would exceed it waits.
    #[serde(default)]
    pub per_seconds: Option<u64>,
    /// Headers of a rate-limited answer holding the Unix time (seconds) from which to retry, the first
    /// present wins (X: `x-account-rate-limit-reset`, then `x-rate-limit-reset`); `Retry-After` is read
    /// first in any case.
    #[serde(default)]
    pub reset_headers: Vec<String>,
}

/// One rule of `errors:`: when an answer matches every condition written, `action` says what it means.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRule {
    /// HTTP statuses the rule applies to (any when left out).
    #[serde(default)]
    pub status: Vec<u16>,
    /// A field of the JSON body that must be present and not null (`error.code`).
    #[serde(default)]
    pub body_path: Option<String>,
    /// ... and whose value, as text, must be one of these.
    #[serde(default)]
    pub equals: Vec<String>,
    /// ... and whose value, as text, must be none of these (`code` other than `"0"`: an error envelope
    /// sent with HTTP 200).
    #[serde(default)]
    pub not_equals: Vec<String>,
    /// ... or whose text must contain this.
    #[serde(default)]
    pub contains: Option<String>,
    pub action: ErrorAction,
    /// The field of the body with the platform's message, for the error shown.
    #[serde(default)]
    pub message_path: Option<String>,
    /// How long to wait before retrying (`retry`, `rate_limited`) when the answer has no
    /// `Retry-After` header, in seconds.
    #[serde(default)]
    pub wait_seconds: Option<u64>,
    /// A field of the body with the seconds to wait (a number, or text holding one: `"retry in 30
    /// seconds"`), read before `wait_seconds`.
    #[serde(default)]
    pub wait_path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorAction {
    /// A transient failure: retried with backoff.
    Retry,
    /// The platform's rate limit: retried after its wait.
    RateLimited,
    /// The credentials were refused: a refreshing token is renewed once, otherwise the run stops and
    /// says to check them.
    Auth,
    /// The API version is no longer served.
    Sunset,
    /// Final: the platform's error, shown with its message.
    Fail,
    /// Not an error after all: the body is read as data.
    Success,
}

/// The request for one account's description and where its fields are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountDef {
    pub request: RequestDef,
    /// Where the account object is in the answer (`data`); the whole body when left out.
    #[serde(default)]
    pub record: Option<String>,
    pub fields: BTreeMap<String, FieldExpr>,
    /// A second request for the columns the first does not give (X: an ad account has no currency; its
    /// funding instruments have one).
    #[serde(default)]
    pub also: Option<AccountPart>,
}

/// The second request of an account: its own record path and the columns it maps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPart {
    pub request: RequestDef,
    #[serde(default)]
    pub record: Option<String>,
    pub fields: BTreeMap<String, FieldExpr>,
}

/// One stream: the request of its pages, the paginator, where its records are, how each maps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamDef {
    /// A daily stream's longest window per request, in days (the API's limit).
    #[serde(default)]
    pub max_window_days: Option<u32>,
    pub request: RequestDef,
    #[serde(default)]
    pub paginator: Paginator,
    /// How the answer is decoded.
    #[serde(default)]
    pub decoder: Decoder,
    /// With `decoder: csv`, the file's layout.
    #[serde(default)]
    pub csv: Option<CsvDef>,
    /// Where the records are: a path to an array (`data`), or empty for a body that is the array.
    #[serde(default)]
    pub records: String,
    /// A field of each record that holds an array: each of its entries becomes a record of its own,
    /// with the outer record's other fields (the entry's win).
    #[serde(default)]
    pub explode: Option<String>,
    /// The harmonized columns, each from the record.
    pub fields: BTreeMap<String, FieldExpr>,
    /// Where missing parent ids come from. On the daily stream, `ads`: a row's `campaign_id` and
    /// `ad_group_id`, when the report does not carry them (an API that breaks down by a few dimensions
    /// only), come from the ads stream's record of its `ad_id`, read at the start of each window. On the
    /// ads stream, `ad_groups`: an ad's `campaign_id`, when its record names only its ad group
    /// (Snapchat's ads), is its ad group's, read before the ads.
    #[serde(default)]
    pub parents: Option<String>,
    /// An asynchronous report: `request` creates a job, which is polled until it is done, and its file
    /// is downloaded and read with `decoder` and `records` (the paginator is then `none`).
    #[serde(default)]
    pub job: Option<JobDef>,
    /// An entity list asked for per parent entity (Microsoft's ad groups per campaign, ads per ad group):
    /// `campaigns` or `ad_groups`, read first; the request's templates read `parent.id` (and
    /// `parent.campaign_id`), and a record's missing `campaign_id` / `ad_group_id` are its parent's.
    #[serde(default)]
    pub for_each: Option<String>,
    /// The daily stream's records hold their metrics as arrays with one entry per day of the window,
    /// from its first day (X's stats): each record becomes a row per day, a field holding an array reads
    /// that day's entry (null or past the end: missing), and `date` is left unmapped: it is the window's
    /// first day plus the entry's index. A day whose metrics are all zero or missing is no row.
    #[serde(default)]
    pub per_day: bool,
    /// The daily stream asked for a few entities at a time (X's stats take at most 20 ids a request):
    /// each window's ids are split into batches of `size`, a request each, whose templates read
    /// `batch.ids`.
    #[serde(default)]
    pub batch: Option<BatchDef>,
}

/// Where a batched stream's ids come from, and how many go in one request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchDef {
    /// At most this many ids a request.
    pub size: usize,
    /// The ids of this entity stream (`ads`: every ad of the account, listed at the start of each
    /// window) ...
    #[serde(default)]
    pub of: Option<String>,
    /// ... or of the entities a request lists for the window (X's active entities: only those with
    /// activity in it, so an account's thousands of old ads cost no requests). Its templates read what
    /// the stream's request reads, but `batch`.
    #[serde(default)]
    pub request: Option<RequestDef>,
    /// With `request`: where its records are (`data`).
    #[serde(default)]
    pub records: String,
    /// With `request`: where each record's id is (`entity_id`).
    #[serde(default)]
    pub id: Option<String>,
}

/// An asynchronous report job (Amazon Ads, Pinterest, Microsoft Advertising, X): create, poll,
/// download; `concurrency` of an account's jobs at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDef {
    /// Where the new job's id is in the create request's answer (`reportId`).
    pub id: String,
    /// An answer that refuses the create request as a duplicate of a job already made (Amazon: HTTP 425)
    /// and names that job: its id is read from it and that job polled instead.
    #[serde(default)]
    pub duplicate: Option<DuplicateDef>,
    /// The status request; its templates also read `job.id`.
    pub poll: RequestDef,
    /// Where the job's status is in the poll answer.
    pub status: String,
    /// Statuses of a job still being made: polled again.
    pub running: Vec<String>,
    /// Statuses of a finished job: its file is downloaded.
    pub done: Vec<String>,
    /// Statuses of a job that failed: the run stops with the platform's reason (`message`).
    #[serde(default)]
    pub failed: Vec<String>,
    /// Where the file's URL is in a done job's answer. A done job without one has no rows (Microsoft's
    /// empty reports). The file is fetched without the source's credentials (a presigned storage URL
    /// refuses them), unless `download_auth` is set and the URL is under the base URL.
    pub url: String,
    #[serde(default)]
    pub download_auth: bool,
    /// Where the platform's reason for a failed job is.
    #[serde(default)]
    pub message: Option<String>,
    /// The job is polled at once, then after this many seconds; each later wait is half again as long,
    /// up to a minute.
    #[serde(default = "five")]
    pub poll_seconds: u64,
    /// How long a job may take before the run gives up on it (Amazon's take up to three hours).
    #[serde(default = "three_hours")]
    pub timeout_minutes: u64,
    /// How the file is compressed: `none`, `gzip` or `zip` (an archive of one file: Microsoft's).
    #[serde(default)]
    pub compression: Compression,
    /// How many of one account's reports (its windows, its batches) may be in flight at once; their files
    /// are read in window order, each waiting, downloaded, for those before it. 1 (the default): each
    /// report runs to its end before the next is created.
    #[serde(default = "one_job")]
    pub concurrency: u32,
}

fn one_job() -> u32 {
    1
}

fn five() -> u64 {
    5
}

fn three_hours() -> u64 {
    180
}

/// How a create request's refusal names the job already made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateDef {
    /// The HTTP statuses of the refusal (`425`).
    pub status: Vec<u16>,
    /// The field of its body holding the text that names the job (`detail`).
    pub path: String,
    /// The id is the word after this text (`"duplicate of : "`).
    pub after: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Zip,
}

/// A request, every text a template over `account` (`id`, `currency`, `timezone`, and `raw`: the account
/// record as the API gave it), `window`, `options`, `api_version` (and the page cursor, which the
/// paginator adds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDef {
    #[serde(default)]
    pub method: Method,
    /// One of the spec's `hosts` (the base URL when left out).
    #[serde(default)]
    pub host: Option<String>,
    /// Relative to the base URL (`/api/{{ api_version }}/ad_accounts/{{ account.id }}`).
    pub path: String,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Headers of this request only (`Content-Type: application/vnd.spCampaign.v3+json`), templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body, as a template rendering JSON text (`tojson` quotes values).
    #[serde(default)]
    pub json: Option<String>,
    /// A form body (`application/x-www-form-urlencoded`: X's asynchronous stats jobs), field by field,
    /// each a template.
    #[serde(default)]
    pub form: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Get,
    Post,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decoder {
    /// One JSON document.
    #[default]
    Json,
    /// One JSON record per line (`records` is then left out).
    Jsonl,
    /// A CSV report file (`job:`): a row of column names, then records whose fields are those names
    /// (values as text; an empty cell is a missing field); `csv:` says which lines to skip.
    Csv,
}

/// How a CSV report file is laid out around its column row and records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvDef {
    /// Lines before the column row (a report's title and period lines).
    #[serde(default)]
    pub skip_lines: usize,
    /// Lines after the last record (a copyright line); blank lines at the end are always skipped.
    #[serde(default)]
    pub skip_footer_lines: usize,
    /// The separator: `,` (default) or a tab for TSV.
    #[serde(default = "comma")]
    pub delimiter: String,
}

fn comma() -> String {
    ",".into()
}

impl Default for CsvDef {
    fn default() -> Self {
        CsvDef { skip_lines: 0, skip_footer_lines: 0, delimiter: comma() }
    }
}

/// How the next page is asked for. The paginator's state belongs to one request (one account and
/// window, one stream): it never carries over to the next.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Paginator {
    /// One page.
    #[default]
    None,
    /// A token in the body (`cursor`) sent back as `param`: a query parameter, or with `in: body` a
    /// top-level field of the JSON body (Amazon's `nextToken`); no token = last page.
    Cursor {
        cursor: String,
        param: String,
        #[serde(default, rename = "in")]
        location: CursorIn,
    },
    /// The next page's full URL in the body (`next_url`); it must be under the base URL.
    NextUrl { next_url: String },
    /// Page numbers in the query parameter `param`, from `start`; the last page is one with fewer
    /// records than `size` (sent as `size_param` when given), or the one numbered `total_pages`.
    Page {
        param: String,
        #[serde(default = "one")]
        start: u64,
        size: u64,
        #[serde(default)]
        size_param: Option<String>,
        #[serde(default)]
        total_pages: Option<String>,
    },
    /// Record offsets in `param`, `limit` records a page (sent as `limit_param`); the last page is
    /// one with fewer records than `limit`.
    Offset { param: String, limit_param: String, limit: u64 },
}

/// Where a cursor is sent back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CursorIn {
    #[default]
    Query,
    Body,
}

fn one() -> u64 {
    1
}

/// Where a harmonized column's value comes from: a path (`metrics.spend`), or an object with one of
/// `path`, `sum`, `pick`, `value`, then optionally `map` (of a path's text), `divide` (money in micros:
/// `1000000`) and `format`
/// (of a date: a chrono format such as `%Y%m%d`; a date-time's first ten characters are its date).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FieldExpr {
    Path(String),
    Rich(Box<RichField>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RichField {
    #[serde(default)]
    pub path: Option<String>,
    /// Several fields added (a missing or null one counts 0).
    #[serde(default)]
    pub sum: Option<Vec<String>>,
    /// The entry of an array whose `key` equals `equals`, and its field `value` (Meta's
    /// `actions[action_type=purchase].value`); 0 when no entry matches.
    #[serde(default)]
    pub pick: Option<Pick>,
    /// A constant (`USD`, `UTC`).
    #[serde(default)]
    pub value: Option<String>,
    /// The value read is looked up here and replaced (Microsoft's `EasternTimeUSCanada` →
    /// `America/New_York`); a value the map lacks is an error naming it.
    #[serde(default)]
    pub map: Option<BTreeMap<String, String>>,
    /// Divide the number by this (exactly: decimals, never floats).
    #[serde(default)]
    pub divide: Option<u64>,
    #[serde(default)]
    pub format: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pick {
    pub array: String,
    pub key: String,
    pub equals: String,
    pub value: String,
}
