//! The connector of a declared platform: a [`Source`] that runs a connector spec (`mdp-spec`) through
//! the shared HTTP driver, so a YAML connector gets the same retries, token renewal, paging loop and
//! error wording as a hand-written one, and the loader's guarantees unchanged.

mod api;
mod files;
mod job;
mod row;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, Offset, TimeZone};
use futures::StreamExt;
use mdp_core::{DateWindow, Platform};
use mdp_spec::model::{Auth, ConnectorSpec, FieldExpr, HeaderValueDef, Method, RequestDef, StreamDef};
use mdp_spec::Loaded;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use self::api::{DeclaredApi, Read, Reading};
use self::job::JobPlan;
use self::row::{expand, FieldReader, Record};
use crate::error::SourceError;
use crate::http::{ApiHeader, Endpoint, HeaderSource, HttpRequest};
use crate::json::Normalized;
use crate::record::{EntityRecord, PerformanceRecord};
use crate::source::{emit, AccountInfo, ReadContext, Sink, Source, SourceSettings, StreamSpec};

/// One stream, ready to read: its request, how answers are read, its columns.
#[derive(Debug)]
struct StreamPlan {
    key: String,
    request: RequestDef,
    reading: Arc<Reading>,
    explode: Option<String>,
    fields: BTreeMap<String, FieldReader>,
    /// Missing parent ids come from the parent stream: a daily row's from the ads stream, an ad's
    /// campaign from the ad groups stream.
    fill_parents: bool,
    /// A report job instead of pages.
    job: Option<JobPlan>,
    /// A CSV report file's layout.
    csv: Option<mdp_spec::model::CsvDef>,
    /// The parent entity stream the list is asked for per entity of.
    for_each: Option<String>,
    /// The daily stream's records hold a value per day of the window in their arrays.
    per_day: bool,
    /// The daily stream asked for a batch of ids a request.
    batch: Option<BatchPlan>,
}

/// How a batched stream's ids are found and split.
#[derive(Debug)]
struct BatchPlan {
    size: usize,
    /// `None`: every ad of the ads stream; else the request listing the window's entities.
    list: Option<ListPlan>,
}

#[derive(Debug)]
struct ListPlan {
    request: RequestDef,
    reading: Arc<Reading>,
    id: FieldReader,
}

impl StreamPlan {
    fn new(
        name: &str,
        stream: &StreamDef,
        loaded: &Loaded,
        api: &Arc<DeclaredApi>,
        render: &impl Fn(&str) -> String,
    ) -> StreamPlan {
        let key = format!("streams.{name}");
        StreamPlan {
            job: stream.job.as_ref().map(|def| JobPlan::new(def, api)),
            fields: readers(&stream.fields, &format!("{key}.fields"), loaded, render),
            key,
            request: stream.request.clone(),
            reading: Arc::new(Reading {
                paginator: stream.paginator.clone(),
                decoder: stream.decoder,
                records: stream.records.clone(),
            }),
            explode: stream.explode.clone(),
            fill_parents: stream.parents.is_some(),
            csv: stream.csv.clone(),
            for_each: stream.for_each.clone(),
            per_day: stream.per_day,
            batch: stream.batch.as_ref().map(|batch| BatchPlan {
                size: batch.size.max(1),
                list: batch.request.as_ref().map(|request| ListPlan {
                    request: request.clone(),
                    reading: Arc::new(Reading {
                        paginator: Default::default(),
                        decoder: Default::default(),
                        records: batch.records.clone(),
                    }),
                    id: FieldReader::new(
                        "id",
                        loaded.place(&format!("streams.{name}.batch.id")),
                        &FieldExpr::Path(batch.id.clone().unwrap_or_default()),
                        render,
                    ),
                }),
            }),
        }
    }

    fn field(&self, column: &str) -> Option<&FieldReader> {
        self.fields.get(column)
    }
}

fn readers(
    fields: &BTreeMap<String, FieldExpr>,
    prefix: &str,
    loaded: &Loaded,
    render: &impl Fn(&str) -> String,
) -> BTreeMap<String, FieldReader> {
    fields
        .iter()
        .map(|(column, expr)| {
            let place = loaded.place(&format!("{prefix}.{column}"));
            (column.clone(), FieldReader::new(column, place, expr, render))
        })
        .collect()
}

/// A source on a declared platform.
pub struct DeclaredSource {
    settings: SourceSettings,
    loaded: Arc<Loaded>,
    api: Arc<DeclaredApi>,
    templates: minijinja::Environment<'static>,
    /// The spec's template headers, sent with every request (`headers.<name>` in `templates`).
    header_templates: Vec<String>,
    /// The spec's other hosts, by name: where a request with `host:` goes.
    hosts: BTreeMap<String, String>,
    account: FieldsOf,
    streams: BTreeMap<String, StreamPlan>,
}

#[derive(Debug)]
struct FieldsOf {
    request: RequestDef,
    record: Option<String>,
    fields: BTreeMap<String, FieldReader>,
    /// The account's second request, for the columns the first does not give.
    also: Option<Box<FieldsOf>>,
}

impl std::fmt::Debug for DeclaredSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeclaredSource").field("platform", &self.settings.platform).finish_non_exhaustive()
    }
}

/// What every template sees besides `account` and `window`.
fn base_context(settings: &SourceSettings) -> Value {
    let options = settings.options.declared().map(|o| o.values.clone()).unwrap_or_default();
    json!({ "api_version": settings.api_version, "options": options })
}

impl DeclaredSource {
    pub fn new(settings: SourceSettings) -> Result<DeclaredSource, SourceError> {
        let loaded = mdp_spec::get(settings.platform).ok_or_else(|| {
            settings.config_error(format!("no connector spec of {} is registered", settings.platform))
        })?;
        let spec: &ConnectorSpec = &loaded.spec;
        let mut templates = minijinja::Environment::new();
        templates.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let base = base_context(&settings);
        let render_now = |source: &str| -> Result<String, String> {
            let env = minijinja::Environment::new();
            env.render_str(source, &base).map_err(|e| e.to_string())
        };
        let kind = loaded.kind;
        let credential = |name: &str| -> Result<&'static str, SourceError> {
            kind.credential(name).map(|c| c.name).ok_or_else(|| {
                settings.config_error(format!("internal: credential {name} of the spec is not in its kind"))
            })
        };
        let mut headers = Vec::new();
        match &spec.auth {
            Auth::None => {}
            Auth::Bearer { credential: name, .. } => headers.push(ApiHeader {
                name: "authorization".into(),
                value: HeaderSource::Credential { name: credential(name)?, prefix: "Bearer ".into() },
            }),
            Auth::Header { header, credential: name, prefix } => headers.push(ApiHeader {
                name: header.to_ascii_lowercase().into(),
                value: HeaderSource::Credential { name: credential(name)?, prefix: prefix.clone().into() },
            }),
            Auth::OAuth1 { consumer_key, consumer_secret, token, token_secret } => headers.push(ApiHeader {
                name: "authorization".into(),
                value: HeaderSource::OAuth1 {
                    consumer_key: credential(consumer_key)?,
                    consumer_secret: credential(consumer_secret)?,
                    token: credential(token)?,
                    token_secret: credential(token_secret)?,
                },
            }),
            Auth::Basic { username, password } => headers.push(ApiHeader {
                name: "authorization".into(),
                value: HeaderSource::Basic { username: credential(username)?, password: credential(password)? },
            }),
        }
        // Credential headers are the endpoint's; template headers are rendered per request (they may read
        // the account).
        for (name, value) in &spec.headers {
            if let HeaderValueDef::Credential(header) = value {
                let value = HeaderSource::Credential {
                    name: credential(&header.credential)?,
                    prefix: header.prefix.clone().into(),
                };
                headers.push(ApiHeader { name: name.to_ascii_lowercase().into(), value });
            }
        }
        // The spec's other hosts; a source with a base_url of its own (a proxy, an imitation) is served
        // every host there.
        let own_base = settings.base() != spec.base_url.trim_end_matches('/');
        let hosts: BTreeMap<String, String> = spec
            .hosts
            .iter()
            .map(|(name, url)| {
                let url = if own_base { settings.base() } else { url.trim_end_matches('/') };
                (name.clone(), url.to_string())
            })
            .collect();
        let mut endpoint = Endpoint::new(&settings, "", &headers)?.with_roots(hosts.values().cloned());
        let limit = spec.rate_limit.as_ref();
        if let Some((requests, seconds)) = limit.and_then(|l| l.requests.zip(l.per_seconds)) {
            endpoint = endpoint.with_rate_limit(requests, std::time::Duration::from_secs(seconds));
        }
        let reset_headers = limit.map(|l| l.reset_headers.clone()).unwrap_or_default();
        let api = Arc::new(DeclaredApi { endpoint, rules: spec.errors.clone(), reset_headers });
        let render_equals = |source: &str| render_now(source).unwrap_or_else(|_| source.to_string());
        let account = FieldsOf {
            request: spec.account.request.clone(),
            record: spec.account.record.clone(),
            fields: readers(&spec.account.fields, "account.fields", &loaded, &render_equals),
            also: spec.account.also.as_ref().map(|also| {
                Box::new(FieldsOf {
                    request: also.request.clone(),
                    record: also.record.clone(),
                    fields: readers(&also.fields, "account.also.fields", &loaded, &render_equals),
                    also: None,
                })
            }),
        };
        let streams = spec
            .streams
            .iter()
            .map(|(name, stream)| (name.clone(), StreamPlan::new(name, stream, &loaded, &api, &render_equals)))
            .collect();
        // Every request template, named by its key path (errors then point at the spec).
        let mut add = |key: String, source: &str| {
            templates
                .add_template_owned(key.clone(), source.to_string())
                .map_err(|e| settings.config_error(format!("{}: {key}: {e}", loaded.place(&key))))
        };
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
            add(format!("{key}.path"), &request.path)?;
            for (name, value) in &request.query {
                add(format!("{key}.query.{name}"), value)?;
            }
            for (name, value) in &request.headers {
                add(format!("{key}.headers.{name}"), value)?;
            }
            if let Some(body) = &request.json {
                add(format!("{key}.json"), body)?;
            }
            for (name, value) in &request.form {
                add(format!("{key}.form.{name}"), value)?;
            }
        }
        let mut header_templates = Vec::new();
        for (name, value) in &spec.headers {
            if let HeaderValueDef::Template(template) = value {
                add(format!("headers.{name}"), template)?;
                header_templates.push(name.clone());
            }
        }
        Ok(DeclaredSource { settings, loaded, api, templates, header_templates, hosts, account, streams })
    }

    fn platform(&self) -> Platform {
        self.settings.platform
    }

    fn render(&self, key: &str, context: &Value) -> Result<String, SourceError> {
        let template = self.templates.get_template(key).map_err(|e| self.settings.config_error(e.to_string()))?;
        template.render(context).map_err(|e| {
            let detail = e.detail().map(str::to_string).unwrap_or_else(|| e.to_string());
            self.settings.config_error(format!("{}: {key}: {detail}", self.loaded.place(key)))
        })
    }

    fn request(&self, key: &str, def: &RequestDef, context: &Value) -> Result<HttpRequest, SourceError> {
        let path = self.render(&format!("{key}.path"), context)?;
        // Validated: a request's host is one of the spec's.
        let path = match def.host.as_ref().and_then(|host| self.hosts.get(host)) {
            Some(root) => format!("{root}/{}", path.trim_start_matches('/')),
            None => path,
        };
        let mut request = match (def.method, &def.json) {
            (Method::Post, Some(_)) => {
                let body = self.render(&format!("{key}.json"), context)?;
                serde_json::from_str::<&RawValue>(&body).map_err(|e| {
                    self.settings.config_error(format!(
                        "{}: {key}.json: the rendered body is not JSON ({e}): {body}",
                        self.loaded.place(&format!("{key}.json"))
                    ))
                })?;
                HttpRequest::post_json(path, body)
            }
            (Method::Post, None) => HttpRequest { method: reqwest::Method::POST, ..HttpRequest::get(path) },
            (Method::Get, _) => HttpRequest::get(path),
        };
        for name in def.query.keys() {
            let value = self.render(&format!("{key}.query.{name}"), context)?;
            request = request.param(name.clone(), value);
        }
        for name in def.form.keys() {
            let value = self.render(&format!("{key}.form.{name}"), context)?;
            request.form_body.push((name.clone().into(), value));
        }
        // A spec header that renders empty (an option left unset) is not sent.
        for name in &self.header_templates {
            let value = self.render(&format!("headers.{name}"), context)?;
            if !value.is_empty() {
                request = request.header(name.to_ascii_lowercase(), value);
            }
        }
        for name in def.headers.keys() {
            let value = self.render(&format!("{key}.headers.{name}"), context)?;
            request = request.header(name.to_ascii_lowercase(), value);
        }
        Ok(request)
    }

    fn context(&self, account: Value, window: Option<Value>) -> Value {
        let mut context = base_context(&self.settings);
        context["account"] = account;
        if let Some(window) = window {
            context["window"] = window;
        }
        context
    }

    fn plan(&self, stream: &str) -> Result<&StreamPlan, SourceError> {
        self.streams.get(stream).ok_or_else(|| self.settings.config_error(format!("the spec has no stream {stream}")))
    }

    fn malformed(&self, what: impl std::fmt::Display) -> SourceError {
        SourceError::malformed(self.platform(), what.to_string())
    }

    /// Read every page of `read`, mapping each record with `map`, sending them to `out` page by page.
    /// `days`: the window's length when each record holds a value per day in its arrays (`per_day`), else 0.
    async fn read_pages<T: Send>(
        &self,
        plan: &StreamPlan,
        read: Read,
        days: u32,
        ctx: &ReadContext,
        out: &Sink<T>,
        map: impl Fn(&Record<'_>, String) -> Result<T, SourceError>,
    ) -> Result<(), SourceError> {
        let mut pages = ctx.http.pages(&self.api, read);
        while let Some((body, rows)) = pages.next_text().await? {
            let mut records = Vec::with_capacity(rows.len());
            for range in rows {
                let item: &RawValue = serde_json::from_str(&body[range]).map_err(|e| self.malformed(e))?;
                self.map_item(plan, item, days, &map, &mut records)?;
            }
            for chunk in chunks(records, crate::http::ROWS_PER_SEND) {
                emit(out, ctx, chunk).await?;
            }
        }
        Ok(())
    }

    /// The records of one item of an answer (several when the stream explodes an array, and one per day
    /// of the `days` when its values are arrays by day), mapped.
    fn map_item<T>(
        &self,
        plan: &StreamPlan,
        item: &RawValue,
        days: u32,
        map: &impl Fn(&Record<'_>, String) -> Result<T, SourceError>,
        records: &mut Vec<T>,
    ) -> Result<(), SourceError> {
        let expanded =
            expand(item, plan.explode.as_deref()).map_err(|e| self.malformed(format!("{}.explode: {e}", plan.key)))?;
        for record in expanded {
            let payload = record.payload(plan.explode.as_deref()).map_err(|e| self.malformed(e))?;
            if days == 0 {
                records.push(map(&record, payload)?);
                continue;
            }
            // The record's arrays hold a value per day: a row per day, each carrying the whole record once
            // with the index of its day. A day whose metrics are all zero or missing is no row (X writes a
            // zero for each day without delivery; other platforms leave such days out).
            for day in 0..days as usize {
                let on_day = record.on_day(day);
                if self.nothing_on(plan, &on_day)? {
                    continue;
                }
                let payload = format!("{{\"_mdp_day_index\":{day},\"record\":{payload}}}");
                records.push(map(&on_day, payload)?);
            }
        }
        Ok(())
    }

    /// Whether every metric a daily record maps is zero or missing.
    fn nothing_on(&self, plan: &StreamPlan, record: &Record<'_>) -> Result<bool, SourceError> {
        const METRICS: [&str; 9] = [
            "impressions",
            "clicks",
            "spend",
            "conversions",
            "conversion_value",
            "video_views",
            "likes",
            "comments",
            "shares",
        ];
        let mut notes = Normalized::default();
        for column in METRICS {
            if let Some(field) = plan.field(column) {
                if !field.decimal(self.platform(), record, &mut notes)?.is_zero() {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    fn text(
        &self,
        fields: &BTreeMap<String, FieldReader>,
        column: &str,
        record: &Record<'_>,
    ) -> Result<Option<String>, SourceError> {
        match fields.get(column) {
            Some(field) => field.text(self.platform(), record),
            None => Ok(None),
        }
    }
}

/// The account as templates see it: `id`, `currency`, `timezone` (IANA), and `raw`, the account record
/// as the API gave it (Microsoft's own time zone name for its report requests).
fn account_context(account: &AccountInfo) -> Value {
    let raw: Value = serde_json::from_str(&account.record.payload).unwrap_or(Value::Null);
    json!({ "id": account.id, "currency": account.currency, "timezone": account.timezone, "raw": raw })
}

/// An entity's parents by its id: (campaign id, ad group id).
type Parents = HashMap<String, (Option<String>, Option<String>)>;

impl DeclaredSource {
    /// One entity list's pages (of one parent, when the stream is asked for per parent: its campaign and
    /// ad group ids fill the records' missing ones).
    #[allow(clippy::too_many_arguments, reason = "one read's parts, passed down from read_entities")]
    async fn read_entity_pages(
        &self,
        plan: &StreamPlan,
        stream: &StreamSpec,
        context: Value,
        parent: Option<(Option<String>, Option<String>)>,
        groups: &Parents,
        account: &AccountInfo,
        ctx: &ReadContext,
        out: &Sink<EntityRecord>,
    ) -> Result<(), SourceError> {
        let request = self.request(&format!("{}.request", plan.key), &plan.request, &context)?;
        let read = Read { request, reading: plan.reading.clone() };
        let (parent_campaign, parent_group) = parent.unwrap_or_default();
        self.read_pages(plan, read, 0, ctx, out, |record, payload| {
            let id = self.text(&plan.fields, "id", record)?.ok_or_else(|| {
                self.malformed(format!("a record of {} has no id ({}.fields.id)", stream.name, plan.key))
            })?;
            let ad_group_id = self.text(&plan.fields, "ad_group_id", record)?.or_else(|| parent_group.clone());
            let campaign_id = match self.text(&plan.fields, "campaign_id", record)? {
                Some(campaign_id) => Some(campaign_id),
                None => ad_group_id
                    .as_ref()
                    .and_then(|group| groups.get(group))
                    .and_then(|(c, _)| c.clone())
                    .or_else(|| parent_campaign.clone()),
            };
            if plan.fill_parents && campaign_id.is_none() {
                tracing::warn!(platform = %self.platform(), account = %account.id, ad = %id, "an ad's ad group is not in the ad groups stream: its campaign stays empty");
            }
            Ok(EntityRecord {
                account_id: account.id.clone(),
                id,
                name: self.text(&plan.fields, "name", record)?,
                status: self.text(&plan.fields, "status", record)?,
                campaign_id,
                ad_group_id,
                currency: None,
                timezone: None,
                payload,
            })
        })
        .await
    }

    /// Each entity's campaign and ad group, from the entity stream `stream` (`ads`, `ad_groups`), read
    /// now: an entity created since the last window is known.
    async fn parents(&self, stream: &str, account: &AccountInfo, ctx: &ReadContext) -> Result<Parents, SourceError> {
        let entities = self.loaded.kind.stream(stream).expect("a spec has every entity stream");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<EntityRecord>>(4);
        let collect = async {
            let (mut parents, mut read) = (HashMap::new(), 0u64);
            while let Some(page) = rx.recv().await {
                read += page.len() as u64;
                for entity in page {
                    parents.insert(entity.id, (entity.campaign_id, entity.ad_group_id));
                }
            }
            (parents, read)
        };
        let read = async {
            let result = self.read_entities(entities, account, ctx, &tx).await;
            drop(tx);
            result
        };
        let (result, (parents, read)) = tokio::join!(read, collect);
        // Its requests count; its records are not rows of this stream (the snapshot is that stream's own).
        ctx.http.stats.rows.fetch_sub(read, std::sync::atomic::Ordering::Relaxed);
        result.map(|()| parents)
    }
}

fn chunks<T>(mut records: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    while records.len() > size {
        let rest = records.split_off(size);
        out.push(std::mem::replace(&mut records, rest));
    }
    out.push(records);
    out
}

/// The window as templates see it: dates (`start`, `end` inclusive, `end_exclusive`); the
/// account-local midnights that open and close it as RFC 3339 (`start_at`, `end_at`), each with its
/// own day's UTC offset; and the same midnights written with the offset the zone has `now`
/// (`start_at_offset_now`, `end_at_offset_now`: X's rule, "the offset of the current day, not the offset
/// of the day in question").
fn window_context(window: DateWindow, timezone: &str, now: chrono::DateTime<chrono::Utc>) -> Result<Value, String> {
    let zone: chrono_tz::Tz =
        timezone.parse().map_err(|_| format!("the account's time zone {timezone:?} is not an IANA name"))?;
    let midnight = |day: NaiveDate| {
        let naive = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        // A zone whose clocks skip midnight (a DST change at 00:00) starts the day at the first instant.
        zone.from_local_datetime(&naive)
            .earliest()
            .or_else(|| zone.from_local_datetime(&(naive + chrono::Duration::hours(1))).earliest())
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    };
    let offset_now = zone.offset_from_utc_datetime(&now.naive_utc()).fix();
    let midnight_now = |day: NaiveDate| {
        let naive = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        offset_now.from_local_datetime(&naive).single().map(|t| t.to_rfc3339()).unwrap_or_default()
    };
    let after = window.end().succ_opt().unwrap_or(window.end());
    Ok(json!({
        "start": window.start().to_string(),
        "end": window.end().to_string(),
        "end_exclusive": after.to_string(),
        "start_at": midnight(window.start()),
        "end_at": midnight(after),
        "start_at_offset_now": midnight_now(window.start()),
        "end_at_offset_now": midnight_now(after),
        "days": window.days(),
    }))
}

#[async_trait]
impl Source for DeclaredSource {
    fn settings(&self) -> &SourceSettings {
        &self.settings
    }

    fn streams(&self) -> &'static [StreamSpec] {
        self.loaded.kind.streams
    }

    async fn account(&self, account_id: &str, ctx: &ReadContext) -> Result<AccountInfo, SourceError> {
        let context = self.context(json!({ "id": account_id }), None);
        let first = self.account_record("account", &self.account, &context, ctx).await?;
        let also = match &self.account.also {
            Some(also) => Some(self.account_record("account.also", also, &context, ctx).await?),
            None => None,
        };
        // A column comes from the request that maps it (validated: one of them does).
        let column = |column: &str| -> Result<Option<String>, SourceError> {
            let record = Record::new(&first, None);
            match (self.account.fields.contains_key(column), &also, &self.account.also) {
                (false, Some(also_record), Some(also)) => {
                    self.text(&also.fields, column, &Record::new(also_record, None))
                }
                _ => self.text(&self.account.fields, column, &record),
            }
        };
        let required = |name: &str| -> Result<String, SourceError> {
            column(name)?.ok_or_else(|| {
                let key = match self.account.fields.contains_key(name) {
                    true => "account.fields",
                    false => "account.also.fields",
                };
                self.malformed(format!("account {account_id} has no {name} ({key}.{name})"))
            })
        };
        let (currency, timezone) = (required("currency")?, required("timezone")?);
        let (name, status) = (column("name")?, column("status")?);
        Ok(AccountInfo::new(account_id.to_string(), name, status, currency, timezone, first.get().to_string()))
    }

    async fn read_entities(
        &self,
        stream: &StreamSpec,
        account: &AccountInfo,
        ctx: &ReadContext,
        out: &Sink<EntityRecord>,
    ) -> Result<(), SourceError> {
        let plan = self.plan(stream.name)?;
        // An ad's campaign, when its record names only its ad group (validated: only ads take parents).
        let groups = match plan.fill_parents {
            true => self.parents("ad_groups", account, ctx).await?,
            false => HashMap::new(),
        };
        let Some(parent_stream) = plan.for_each.as_deref() else {
            let context = self.context(account_context(account), None);
            return self.read_entity_pages(plan, stream, context, None, &groups, account, ctx, out).await;
        };
        // Asked for per parent entity (validated: ad groups per campaign, ads per campaign or ad group).
        let parents = self.parents(parent_stream, account, ctx).await?;
        let mut ids: Vec<(&String, &Option<String>)> =
            parents.iter().map(|(id, (campaign, _))| (id, campaign)).collect();
        ids.sort();
        for (id, campaign) in ids {
            let mut context = self.context(account_context(account), None);
            context["parent"] = json!({ "id": id, "campaign_id": campaign });
            let parent = match parent_stream {
                "campaigns" => (Some(id.clone()), None),
                _ => (campaign.clone(), Some(id.clone())),
            };
            self.read_entity_pages(plan, stream, context, Some(parent), &groups, account, ctx, out).await?;
        }
        Ok(())
    }

    async fn read_daily(
        &self,
        stream: &StreamSpec,
        account: &AccountInfo,
        window: DateWindow,
        ctx: &ReadContext,
        out: &Sink<PerformanceRecord>,
    ) -> Result<(), SourceError> {
        let plan = self.plan(stream.name)?;
        let platform = self.platform();
        // ad id → (campaign id, ad group id), for reports that name the ad only (and the ids batched).
        let every_ad = plan.batch.as_ref().is_some_and(|batch| batch.list.is_none());
        let parents = match plan.fill_parents || every_ad {
            true => self.parents("ads", account, ctx).await?,
            false => HashMap::new(),
        };
        let parent = |ad_id: &str, which: usize| {
            parents.get(ad_id).and_then(
                |ids: &(Option<String>, Option<String>)| if which == 0 { ids.0.clone() } else { ids.1.clone() },
            )
        };
        let field = |column: &str| plan.field(column).expect("validated: the spec maps every required column");
        let optional = |column: &str, record: &Record<'_>| -> Result<Option<i64>, SourceError> {
            plan.field(column).map(|f| f.integer(platform, record)).transpose()
        };
        // A daily row of `part` from a record.
        let row = |part: DateWindow, record: &Record<'_>, payload: String| {
            let date = match record.day {
                Some(index) => part.start() + chrono::Days::new(index as u64),
                None => field("date").date(platform, record)?,
            };
            if !part.contains(date) {
                return Err(self.malformed(format!(
                    "a row is dated {date}, outside the requested window {part} (check the request's date \
                     parameters and {}.fields.date)",
                    plan.key
                )));
            }
            let mut notes = Normalized::default();
            let ad_id = self
                .text(&plan.fields, "ad_id", record)?
                .ok_or_else(|| self.malformed(format!("a row of {date} has no ad id ({}.fields.ad_id)", plan.key)))?;
            let campaign_id = self.text(&plan.fields, "campaign_id", record)?.or_else(|| parent(&ad_id, 0));
            let ad_group_id = self.text(&plan.fields, "ad_group_id", record)?.or_else(|| parent(&ad_id, 1));
            if plan.fill_parents && !parents.contains_key(&ad_id) {
                tracing::warn!(platform = %platform, account = %account.id, ad = %ad_id, "a report row names an ad the ads stream does not list: its campaign and ad group stay empty");
            }
            let record = PerformanceRecord {
                date: Some(date),
                account_id: account.id.clone(),
                campaign_id,
                ad_group_id,
                ad_id: Some(ad_id),
                impressions: field("impressions").integer(platform, record)?,
                clicks: field("clicks").integer(platform, record)?,
                spend: field("spend").decimal(platform, record, &mut notes)?,
                conversions: field("conversions").decimal(platform, record, &mut notes)?,
                conversion_value: field("conversion_value").decimal(platform, record, &mut notes)?,
                video_views: optional("video_views", record)?,
                likes: optional("likes", record)?,
                comments: optional("comments", record)?,
                shares: optional("shares", record)?,
                payload: notes.into_payload(payload),
            };
            Ok(record)
        };
        // Rows of a per-day record are dated by their index in its arrays.
        let days = |part: DateWindow| if plan.per_day { part.days() } else { 0 };
        // Every window's reads, found first: a request per batch of ids, or one.
        let mut reads: Vec<(DateWindow, Value)> = Vec::new();
        for part in window.split(stream.max_window_days.max(1)) {
            let window_values =
                window_context(part, &account.timezone, chrono::Utc::now()).map_err(|e| self.malformed(e))?;
            let context = self.context(account_context(account), Some(window_values));
            let Some(batch) = &plan.batch else {
                reads.push((part, context));
                continue;
            };
            let ids = match &batch.list {
                Some(list) => self.listed_ids(plan, list, &context, ctx).await?,
                None => {
                    let mut ids: Vec<String> = parents.keys().cloned().collect();
                    ids.sort();
                    ids
                }
            };
            for ids in ids.chunks(batch.size) {
                let mut context = context.clone();
                context["batch"] = json!({ "ids": ids });
                reads.push((part, context));
            }
        }
        match &plan.job {
            None => {
                for (part, context) in &reads {
                    let request = self.request(&format!("{}.request", plan.key), &plan.request, context)?;
                    let read = Read { request, reading: plan.reading.clone() };
                    self.read_pages(plan, read, days(*part), ctx, out, |r, p| row(*part, r, p)).await?;
                }
            }
            // Up to `concurrency` of the account's reports in flight; their files are read in window order
            // (each waits, downloaded, for those before it).
            Some(job) => {
                let fetches: Vec<_> =
                    reads.iter().map(|(_, context)| self.fetch_report(plan, job, context, ctx)).collect();
                let mut files = futures::stream::iter(fetches).buffered(job.concurrency());
                for (part, _) in &reads {
                    let file = files.next().await.expect("a report for each read")?;
                    if let Some(file) = file {
                        self.read_report_file(plan, job, file, days(*part), ctx, out, |r, p| row(*part, r, p)).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl DeclaredSource {
    /// One account request's record (`key`: `account` or `account.also`), as the API gave it.
    async fn account_record(
        &self,
        key: &str,
        part: &FieldsOf,
        context: &Value,
        ctx: &ReadContext,
    ) -> Result<Box<RawValue>, SourceError> {
        let request = self.request(&format!("{key}.request"), &part.request, context)?;
        let answer = ctx.http.json(self.api.as_ref(), &request).await?;
        let text = answer.to_string();
        let body: &RawValue = serde_json::from_str(&text).map_err(|e| self.malformed(e))?;
        let own = match &part.record {
            Some(path) => row::at(body, path)
                .map_err(|e| self.malformed(format!("{key}.record: {e}")))?
                .ok_or_else(|| self.malformed(format!("the answer of {key}.request has no `{path}`")))?,
            None => body,
        };
        Ok(own.to_owned())
    }

    /// The ids a batched stream's list request names for one window (X's active entities), each once, in
    /// order.
    async fn listed_ids(
        &self,
        plan: &StreamPlan,
        list: &ListPlan,
        context: &Value,
        ctx: &ReadContext,
    ) -> Result<Vec<String>, SourceError> {
        let key = format!("{}.batch", plan.key);
        let request = self.request(&format!("{key}.request"), &list.request, context)?;
        let mut pages = ctx.http.pages(&self.api, Read { request, reading: list.reading.clone() });
        let mut ids = std::collections::BTreeSet::new();
        while let Some((body, rows)) = pages.next_text().await? {
            for range in rows {
                let item: &RawValue = serde_json::from_str(&body[range]).map_err(|e| self.malformed(e))?;
                let id = list.id.text(self.platform(), &Record::new(item, None))?.ok_or_else(|| {
                    self.malformed(format!("an entity the batch list names has no id ({key}.id): {}", item.get()))
                })?;
                ids.insert(id);
            }
        }
        Ok(ids.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};
    use mdp_core::DateWindow;

    use super::window_context;

    #[test]
    fn a_window_has_its_midnights_with_each_days_offset_and_with_todays() {
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let window = DateWindow::new(day(7, 1), day(7, 7)).unwrap();
        let december = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
        let la = window_context(window, "America/Los_Angeles", december).unwrap();
        assert_eq!(la["start_at"], "2026-07-01T00:00:00-07:00");
        assert_eq!(la["end_at"], "2026-07-08T00:00:00-07:00");
        // X's rule: the offset Los Angeles has today (December: standard time).
        assert_eq!(la["start_at_offset_now"], "2026-07-01T00:00:00-08:00");
        assert_eq!(la["end_at_offset_now"], "2026-07-08T00:00:00-08:00");
        assert_eq!(
            (la["start"].as_str(), la["end_exclusive"].as_str(), la["days"].as_u64()),
            (Some("2026-07-01"), Some("2026-07-08"), Some(7))
        );
        let berlin = window_context(window, "Europe/Berlin", december).unwrap();
        assert_eq!(berlin["start_at_offset_now"], "2026-07-01T00:00:00+01:00");
        let july = Utc.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).unwrap();
        assert_eq!(
            window_context(window, "Europe/Berlin", july).unwrap()["start_at_offset_now"],
            "2026-07-01T00:00:00+02:00"
        );
        assert!(window_context(window, "Mars/Olympus", july).unwrap_err().contains("not an IANA name"));
    }
}
