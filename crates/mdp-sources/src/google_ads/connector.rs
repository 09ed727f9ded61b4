//! The Google Ads connector: which GAQL query each stream runs, and the [`Source`] it implements.
//!
//! - account: `FROM customer` (id, descriptive name, currency, time zone);
//! - entities: `FROM campaign`, `FROM ad_group`, `FROM ad_group_ad` (removed ones included);
//! - daily: `ad_daily` (`FROM ad_group_ad`) and `campaign_daily` (`FROM campaign`), by `segments.date`.
//!
//! Traps handled here: Performance Max campaigns have no ad rows, so `campaign_daily` carries their
//! spend; performance is never filtered by status; customer ids lose their dashes (`123-456-7890`);
//! `metrics.video_views` was renamed `metrics.video_trueview_views` in v22. The answer's shape is read
//! in `api.rs` and `rows.rs`, its errors in `classify.rs`.

use std::sync::Arc;

use async_trait::async_trait;
use mdp_core::platforms::google_ads::customer_id;
use mdp_core::{DateWindow, GoogleConversionMetric};
use serde_json::Value;

use super::api::{GoogleApi, Search};
use super::rows::{entity_record, performance_record, text};
use super::{PLATFORM, STREAMS};
use crate::error::SourceError;
use crate::optional::OptionalFields;
use crate::record::{EntityRecord, PerformanceRecord};
use crate::source::{emit, AccountInfo, ReadContext, Sink, Source, SourceSettings, StreamSpec};

#[derive(Debug)]
pub struct GoogleAds {
    settings: SourceSettings,
    conversion_metric: GoogleConversionMetric,
    /// Only these conversion actions (names or ids) count; empty: every action the metric counts.
    conversion_actions: Vec<String>,
    optional: OptionalFields,
    api: Arc<GoogleApi>,
    /// Accounts whose conversion actions were found to have every configured one.
    actions_checked: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl GoogleAds {
    pub fn new(settings: SourceSettings) -> Result<GoogleAds, SourceError> {
        for account in &settings.accounts {
            customer_id(account).map_err(|m| settings.config_error(format!("account {account:?}: {m}")))?;
        }
        let options = settings.options.google_ads().cloned().unwrap_or_default();
        let api = Arc::new(GoogleApi::new(&settings, options.login_customer_id.as_deref())?);
        let optional = OptionalFields::new(&settings, &[]);
        Ok(GoogleAds {
            settings,
            conversion_metric: options.conversion_metric,
            conversion_actions: options.conversion_actions,
            optional,
            api,
            actions_checked: Default::default(),
        })
    }

    /// One GAQL query of `customer`, as a paged read (searchStream has one page).
    fn search(&self, customer: &str, gaql: impl Into<String>) -> Result<Search, SourceError> {
        let customer = customer_id(customer).map_err(|message| self.settings.config_error(message))?;
        Ok(Search { customer, gaql: gaql.into() })
    }
}

impl GoogleAds {
    /// Replace the conversions of `records` by those of the configured conversion actions over `part`;
    /// each record's payload gains the action rows it was summed from (`_mdp_conversion_actions`), and
    /// a day with conversions but no delivery row becomes a record of its own.
    /// Check once per account that every configured conversion action exists (by id or name): a typo
    /// would otherwise count nothing, silently. The error lists the account's actions.
    async fn check_actions(&self, ctx: &ReadContext, account_id: &str) -> Result<(), SourceError> {
        if self.actions_checked.lock().unwrap_or_else(|e| e.into_inner()).contains(account_id) {
            return Ok(());
        }
        let query = "SELECT conversion_action.id, conversion_action.name FROM conversion_action";
        let read = |raw: &str| {
            let row = tree(raw)?;
            let id = text(&row, &["conversionAction", "id"]).unwrap_or_default();
            Ok((id, text(&row, &["conversionAction", "name"]).unwrap_or_default()))
        };
        let actions: Vec<(String, String)> =
            ctx.http.pages(&self.api, self.search(account_id, query)?).collect(read).await?;
        for entry in &self.conversion_actions {
            if !actions.iter().any(|(id, name)| id == entry || name == entry) {
                let known: Vec<String> = actions.iter().map(|(id, name)| format!("{name} ({id})")).collect();
                return Err(self.settings.config_error(format!(
                    "Google Ads account {account_id} has no conversion action {entry:?} (by name or id); its actions: \
                     {}. Fix conversion_actions in mdp.yml",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                )));
            }
        }
        self.actions_checked.lock().unwrap_or_else(|e| e.into_inner()).insert(account_id.to_string());
        Ok(())
    }

    async fn merge_action_conversions(
        &self,
        ctx: &ReadContext,
        account_id: &str,
        stream: &str,
        part: DateWindow,
        records: &mut Vec<PerformanceRecord>,
    ) -> Result<(), SourceError> {
        self.check_actions(ctx, account_id).await?;
        let ad_level = stream == "ad_daily";
        let (dimensions, resource) = daily_dimensions(stream).expect("a daily stream");
        let (count, value) = self.conversion_metric.fields();
        let query = format!(
            "SELECT {dimensions}, segments.date, segments.conversion_action, segments.conversion_action_name, \
             {count}, {value} FROM {resource} WHERE segments.date BETWEEN '{}' AND '{}'",
            part.start(),
            part.end()
        );
        let read = |raw: &str| {
            let record = performance_record(account_id, ad_level, self.conversion_metric, raw)?;
            let row = tree(raw)?;
            let action = text(&row, &["segments", "conversionAction"]).unwrap_or_default();
            let id = action.rsplit('/').next().unwrap_or_default().to_string();
            let name = text(&row, &["segments", "conversionActionName"]).unwrap_or_default();
            let chosen = self.conversion_actions.iter().any(|entry| *entry == id || *entry == name);
            Ok::<_, SourceError>(chosen.then(|| (record, raw.to_string())))
        };
        let rows = ctx.http.pages(&self.api, self.search(account_id, query)?).collect(read).await?;
        type Key = (Option<String>, Option<String>, Option<String>, Option<chrono::NaiveDate>);
        let key =
            |r: &PerformanceRecord| -> Key { (r.campaign_id.clone(), r.ad_group_id.clone(), r.ad_id.clone(), r.date) };
        let mut by_key: std::collections::HashMap<Key, (PerformanceRecord, Vec<String>)> = Default::default();
        for (record, raw) in rows.into_iter().flatten() {
            let entry = by_key.entry(key(&record)).or_insert_with(|| {
                let empty = PerformanceRecord {
                    conversions: Default::default(),
                    conversion_value: Default::default(),
                    ..record.clone()
                };
                (empty, Vec::new())
            });
            entry.0.conversions += record.conversions;
            entry.0.conversion_value += record.conversion_value;
            entry.1.push(raw);
        }
        let with_actions =
            |payload: &str, rows: &[String]| crate::json::with_rows(payload, "_mdp_conversion_actions", rows);
        for record in records.iter_mut() {
            let (conversions, rows) = match by_key.remove(&key(record)) {
                Some((found, rows)) => ((found.conversions, found.conversion_value), rows),
                None => (Default::default(), Vec::new()),
            };
            (record.conversions, record.conversion_value) = conversions;
            record.payload = with_actions(&record.payload, &rows);
        }
        for (_, (mut record, rows)) in by_key {
            record.payload = with_actions("{}", &rows);
            records.push(record);
        }
        Ok(())
    }
}

/// A row as a JSON tree (entity and account rows: few, and read by path).
fn tree(raw: &str) -> Result<Value, SourceError> {
    serde_json::from_str(raw).map_err(|e| SourceError::malformed(PLATFORM, format!("unreadable row ({e})")))
}

/// `metrics.video_views` until v21, `metrics.video_trueview_views` from v22.
fn video_metric(api_version: &str) -> &'static str {
    let major: u32 =
        api_version.trim_start_matches(['v', 'V']).split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    if major >= 22 {
        "video_trueview_views"
    } else {
        "video_views"
    }
}

/// The GAQL of a daily stream over `window`.
/// The dimensions and FROM resource of a daily stream.
fn daily_dimensions(stream: &str) -> Option<(&'static str, &'static str)> {
    match stream {
        "ad_daily" => Some(("campaign.id, ad_group.id, ad_group_ad.ad.id", "ad_group_ad")),
        "campaign_daily" => Some(("campaign.id, campaign.advertising_channel_type", "campaign")),
        _ => None,
    }
}

fn daily_query(
    stream: &str,
    api_version: &str,
    conversions: GoogleConversionMetric,
    with_video: bool,
    window: DateWindow,
) -> Option<String> {
    let (dimensions, resource) = daily_dimensions(stream)?;
    let (conversions, conversions_value) = conversions.fields();
    let video = if with_video { format!(", metrics.{}", video_metric(api_version)) } else { String::new() };
    Some(format!(
        "SELECT {dimensions}, segments.date, metrics.impressions, metrics.clicks, metrics.cost_micros, \
         {conversions}, {conversions_value}{video} FROM {resource} \
         WHERE segments.date BETWEEN '{}' AND '{}'",
        window.start(),
        window.end()
    ))
}

#[async_trait]
impl Source for GoogleAds {
    fn settings(&self) -> &SourceSettings {
        &self.settings
    }

    fn streams(&self) -> &'static [StreamSpec] {
        STREAMS
    }

    async fn account(&self, account_id: &str, ctx: &ReadContext) -> Result<AccountInfo, SourceError> {
        let query =
            "SELECT customer.id, customer.descriptive_name, customer.currency_code, customer.time_zone FROM customer";
        let search = self.search(account_id, query)?;
        let row =
            ctx.http.pages(&self.api, search.clone()).collect(tree).await?.into_iter().next().ok_or_else(|| {
                SourceError::Platform {
                    platform: PLATFORM,
                    code: "not_found".into(),
                    message: format!("customer {account_id} returned no row"),
                }
            })?;
        let currency = text(&row, &["customer", "currencyCode"])
            .ok_or_else(|| SourceError::malformed(PLATFORM, "customer without currency_code"))?;
        let timezone = text(&row, &["customer", "timeZone"])
            .ok_or_else(|| SourceError::malformed(PLATFORM, "customer without time_zone"))?;
        Ok(AccountInfo::new(
            search.customer,
            text(&row, &["customer", "descriptiveName"]),
            None,
            currency,
            timezone,
            row.to_string(),
        ))
    }

    async fn read_entities(
        &self,
        stream: &StreamSpec,
        account: &AccountInfo,
        ctx: &ReadContext,
        out: &Sink<EntityRecord>,
    ) -> Result<(), SourceError> {
        let query = match stream.name {
            "campaigns" => "SELECT campaign.id, campaign.name, campaign.status, campaign.advertising_channel_type FROM campaign",
            "ad_groups" => "SELECT ad_group.id, ad_group.name, ad_group.status, campaign.id FROM ad_group",
            "ads" => "SELECT ad_group_ad.ad.id, ad_group_ad.ad.name, ad_group_ad.status, ad_group.id, campaign.id FROM ad_group_ad",
            other => return Err(self.settings.config_error(format!("no entity stream {other}"))),
        };
        let mut pages = ctx.http.pages(&self.api, self.search(&account.id, query)?);
        while pages.send_next(ctx, out, |raw| entity_record(stream.name, &account.id, tree(raw)?)).await? {}
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
        let ad_level = match stream.name {
            "ad_daily" => true,
            "campaign_daily" => false,
            other => return Err(self.settings.config_error(format!("no daily stream {other}"))),
        };
        for part in window.split(stream.max_window_days.max(1)) {
            let convert = |row: &str| {
                let mut record = performance_record(&account.id, ad_level, self.conversion_metric, row)?;
                self.optional.clear(&mut record);
                Ok::<_, SourceError>(record)
            };
            // searchStream answers in one body: a refused optional field (the video metric) fails the
            // whole answer before any row is sent, and the part is asked for again without it.
            loop {
                let video = format!("metrics.{}", video_metric(&self.settings.api_version));
                let query = daily_query(
                    stream.name,
                    &self.settings.api_version,
                    self.conversion_metric,
                    self.optional.wanted(&video),
                    part,
                )
                .expect("a daily stream");
                let mut pages = ctx.http.pages(&self.api, self.search(&account.id, query)?);
                let result = async {
                    if self.conversion_actions.is_empty() {
                        while pages.send_next(ctx, out, convert).await? {}
                        return Ok(());
                    }
                    // Conversions of chosen actions come from a second query segmented by action
                    // (Google refuses delivery metrics in it), merged into the delivery rows.
                    let mut records = pages.collect(convert).await?;
                    self.merge_action_conversions(ctx, &account.id, stream.name, part, &mut records).await?;
                    emit(out, ctx, records).await
                }
                .await;
                match result {
                    Ok(()) => break,
                    Err(error) => self.optional.drop_refused(error)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use mdp_core::{GoogleAdsOptions, SourceOptions};
    use reqwest::header::AUTHORIZATION;

    use super::*;
    use crate::http::ReportApi;

    fn connector() -> GoogleAds {
        let settings = SourceSettings {
            name: "google".into(),
            platform: PLATFORM,
            base_url: "http://localhost".into(),
            api_version: "v21".into(),
            accounts: vec!["123-456-7890".into()],
            credentials: [("access_token".to_string(), crate::Credential::new("secret-token"))].into_iter().collect(),
            token_url: None,
            options: SourceOptions::GoogleAds(GoogleAdsOptions {
                login_customer_id: Some("1112223333".into()),
                ..Default::default()
            }),
        };
        GoogleAds::new(settings).unwrap()
    }

    #[test]
    fn queries_follow_the_version_and_window() {
        let window = DateWindow::new(
            NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
        )
        .unwrap();
        let primary = GoogleConversionMetric::Conversions;
        let q = daily_query("ad_daily", "v21", primary, true, window).unwrap();
        assert!(q.contains("FROM ad_group_ad WHERE segments.date BETWEEN '2026-06-01' AND '2026-06-30'"), "{q}");
        assert!(q.contains("metrics.video_views"));
        assert!(q.contains("metrics.conversions, metrics.conversions_value,") && !q.contains("all_conversions"), "{q}");
        let all = daily_query("campaign_daily", "v22", GoogleConversionMetric::AllConversions, true, window).unwrap();
        assert!(
            all.contains(
                "metrics.all_conversions, metrics.all_conversions_value, metrics.video_trueview_views FROM campaign"
            ),
            "{all}"
        );
        assert!(!q.contains("status"), "performance is never filtered by status");
    }

    #[test]
    fn customer_ids_lose_their_dashes_in_the_request_path() {
        let c = connector();
        let request = c.api.request(&c.search("123-456-7890", "SELECT 1").unwrap(), None);
        assert_eq!(c.api.endpoint().path_of(&request), "/v21/customers/1234567890/googleAds:searchStream");
        assert!(c.search("act_123", "SELECT 1").is_err());
        let mut bad = c.settings.clone();
        bad.accounts = vec!["act_1".into()];
        assert!(matches!(GoogleAds::new(bad), Err(SourceError::Config { .. })));
    }

    #[test]
    fn headers_are_sensitive_and_developer_token_is_optional() {
        let c = connector();
        let headers = c.api.endpoint().headers();
        assert!(headers[AUTHORIZATION].is_sensitive());
        assert_eq!(headers[AUTHORIZATION], "Bearer secret-token");
        assert!(!headers.contains_key("developer-token"), "not configured, not sent");
        assert_eq!(headers["login-customer-id"], "1112223333");
        assert!(!format!("{c:?}").contains("secret-token"));

        let mut with_developer_token = c.settings.clone();
        with_developer_token.credentials.insert("developer_token".into(), crate::Credential::new("dev-token"));
        with_developer_token.options = SourceOptions::defaults(PLATFORM);
        let headers = GoogleAds::new(with_developer_token).unwrap().api.endpoint().headers().clone();
        assert!(headers["developer-token"].is_sensitive());
        assert!(!headers.contains_key("login-customer-id"), "no manager account, no header");
        let mut without_token = c.settings.clone();
        without_token.credentials.clear();
        assert!(matches!(GoogleAds::new(without_token), Err(SourceError::Config { .. })), "access_token is required");
    }
}
