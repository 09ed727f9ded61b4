//! The Meta connector: the ad account node (`act_<id>`), its `campaigns`, `adsets` and `ads` edges, and
//! synchronous `insights` at `level=ad` with `time_increment=1` (one row per ad and day).
//!
//! Traps handled here:
//! - accounts may be configured as `123` or `act_123`; the path uses `act_123`, records use `123`;
//! - `level=ad` insights of an account leave out deleted and archived ads unless filtered on
//!   `ad.effective_status`, so every status is requested (removed ads keep their history); the entity
//!   edges likewise get `effective_status` with every status;
//! - rows without delivery are absent; `clicks` is Meta's all-clicks count (like the other platforms'
//!   clicks); `inline_link_clicks` (Fivetran's choice) stays in the payload;
//! - conversions count only the configured action types (`options.conversion_action_types`), so
//!   overlapping types Meta reports side by side (`purchase`, `omni_purchase`,
//!   `offsite_conversion.fb_pixel_purchase`) are not counted twice unless configured so;
//! - "Please reduce the amount of data" (code 1) splits the date range in half and tries again;
//! - an expired or invalid `after` cursor (code 2642) restarts that window part's paging from the first
//!   page, once; each part's records are held until it is complete, so a restart never duplicates rows.

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use mdp_core::{DateWindow, MetaAdsOptions};
use serde_json::json;

use super::api::{Edge, MetaApi};
use super::classify::{is_invalid_cursor, is_too_much_data};
use super::rows::{account_status_name, entity_record, performance_record, text};
use super::{normalize_account_id, AD_DAILY, PLATFORM, STREAMS};
use crate::error::SourceError;
use crate::http::HttpRequest;
use crate::optional::OptionalFields;
use crate::record::{EntityRecord, PerformanceRecord};
use crate::source::{emit, AccountInfo, ReadContext, Sink, Source, SourceSettings, StreamSpec};

const INSIGHTS_FIELDS: &str = "account_id,account_currency,campaign_id,adset_id,ad_id,date_start,date_stop,impressions,clicks,inline_link_clicks,spend,actions,action_values,inline_post_engagement";

/// Every `effective_status`, so deleted and archived objects are read too.
const ALL_EFFECTIVE_STATUSES: &[&str] = &[
    "ACTIVE",
    "PAUSED",
    "DELETED",
    "PENDING_REVIEW",
    "DISAPPROVED",
    "PREAPPROVED",
    "PENDING_BILLING_INFO",
    "CAMPAIGN_PAUSED",
    "ARCHIVED",
    "ADSET_PAUSED",
    "IN_PROCESS",
    "WITH_ISSUES",
];

/// Meta's description of an access token (`debug_token`).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    /// `SYSTEM_USER`, `USER`, `PAGE`, …
    pub kind: Option<String>,
    pub is_valid: bool,
    /// `None`: it does not expire.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub scopes: Vec<String>,
}

#[derive(Debug)]
pub struct MetaAds {
    settings: SourceSettings,
    conversions: MetaAdsOptions,
    optional: OptionalFields,
    api: Arc<MetaApi>,
}

impl MetaAds {
    pub fn new(settings: SourceSettings) -> Result<MetaAds, SourceError> {
        for account in &settings.accounts {
            if normalize_account_id(account).is_none() {
                return Err(settings.config_error(format!(
                    "account `{account}` is not a Meta ad account id (digits, optionally prefixed with act_)"
                )));
            }
        }
        let options = settings.options.meta_ads().cloned().unwrap_or_default();
        let api = Arc::new(MetaApi::new(&settings, options.page_size)?);
        let optional = OptionalFields::new(&settings, &[]);
        Ok(MetaAds { settings, conversions: options, optional, api })
    }

    /// The action types this source counts as conversions.
    pub fn conversion_action_types(&self) -> &[String] {
        &self.conversions.conversion_action_types
    }

    fn node(&self, account_id: &str) -> Result<String, SourceError> {
        normalize_account_id(account_id)
            .map(|id| format!("act_{id}"))
            .ok_or_else(|| self.settings.config_error(format!("account `{account_id}` is not a Meta ad account id")))
    }

    /// Every item of a cursor-paged edge, each converted as its page arrives (records with compact
    /// payloads take a fraction of a page's parsed JSON) and held until the paging is complete. An
    /// expired or invalid cursor restarts the paging from the first page, once (the items read before
    /// it are dropped, so nothing is duplicated).
    async fn all_pages<T>(
        &self,
        ctx: &ReadContext,
        edge: Edge,
        convert: impl Fn(&str) -> Result<T, SourceError>,
    ) -> Result<Vec<T>, SourceError> {
        let mut restarted = false;
        loop {
            match ctx.http.pages(&self.api, edge.clone()).collect(&convert).await {
                Err(error) if is_invalid_cursor(&error) && !restarted => {
                    tracing::info!(platform = %PLATFORM, path = %edge.path, "the page cursor expired; reading from the first page again");
                    restarted = true;
                }
                other => return other,
            }
        }
    }

    /// What Meta says about this source's access token (`debug_token`): its kind, validity and expiry,
    /// for `mdp doctor` (a user token lives 60 days; a system user's may never expire).
    pub async fn token_info(&self, ctx: &ReadContext) -> Result<TokenInfo, SourceError> {
        let token = self.settings.credential(mdp_core::ACCESS_TOKEN)?;
        let request = HttpRequest::get("debug_token").param("input_token", token.expose());
        let info = ctx.http.json(self.api.as_ref(), &request).await?;
        let data = &info["data"];
        let is_valid = data["is_valid"]
            .as_bool()
            .ok_or_else(|| SourceError::malformed(PLATFORM, "debug_token answered without data.is_valid"))?;
        let expires_at = match data["expires_at"].as_i64() {
            Some(0) | None => None,
            Some(seconds) => chrono::DateTime::from_timestamp(seconds, 0),
        };
        Ok(TokenInfo {
            kind: text(data, "type"),
            is_valid,
            expires_at,
            scopes: data["scopes"]
                .as_array()
                .map(|s| s.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
        })
    }

    fn insights(&self, account_id: &str, part: DateWindow) -> Result<Edge, SourceError> {
        let filtering = json!([{"field": "ad.effective_status", "operator": "IN", "value": ALL_EFFECTIVE_STATUSES}]);
        let mut params = vec![
            ("level", "ad".to_string()),
            ("fields", self.optional.requested(INSIGHTS_FIELDS.split(',')).join(",")),
            ("time_range", json!({"since": part.start().to_string(), "until": part.end().to_string()}).to_string()),
            ("time_increment", "1".to_string()),
            ("filtering", filtering.to_string()),
            ("use_unified_attribution_setting", "true".to_string()),
        ];
        if !self.conversions.attribution_windows.is_empty() {
            // Each action then also carries its value per window; `value` stays the ad set's setting.
            params.push(("action_attribution_windows", json!(self.conversions.attribution_windows).to_string()));
        }
        Ok(Edge { path: format!("{}/insights", self.node(account_id)?), params })
    }
}

#[async_trait]
impl Source for MetaAds {
    fn settings(&self) -> &SourceSettings {
        &self.settings
    }

    fn streams(&self) -> &'static [StreamSpec] {
        STREAMS
    }

    async fn account(&self, account_id: &str, ctx: &ReadContext) -> Result<AccountInfo, SourceError> {
        let node = self.node(account_id)?;
        let id = node.trim_start_matches("act_").to_string();
        let request =
            HttpRequest::get(node.as_str()).param("fields", "id,account_id,name,currency,timezone_name,account_status");
        let info = ctx.http.json(self.api.as_ref(), &request).await?;
        let currency =
            text(&info, "currency").ok_or_else(|| SourceError::malformed(PLATFORM, "ad account without currency"))?;
        let timezone = text(&info, "timezone_name")
            .ok_or_else(|| SourceError::malformed(PLATFORM, "ad account without timezone_name"))?;
        let status = info["account_status"]
            .as_i64()
            .map(|c| account_status_name(c).map_or_else(|| c.to_string(), str::to_string));
        Ok(AccountInfo::new(id, text(&info, "name"), status, currency, timezone, info.to_string()))
    }

    async fn read_entities(
        &self,
        stream: &StreamSpec,
        account: &AccountInfo,
        ctx: &ReadContext,
        out: &Sink<EntityRecord>,
    ) -> Result<(), SourceError> {
        let (edge, fields) = match stream.name {
            "campaigns" => ("campaigns", "id,name,status,effective_status,configured_status,objective,created_time"),
            "ad_groups" => ("adsets", "id,name,status,effective_status,campaign_id"),
            "ads" => ("ads", "id,name,status,effective_status,campaign_id,adset_id"),
            other => return Err(self.settings.config_error(format!("no entity stream {other}"))),
        };
        let params = vec![
            ("fields", fields.to_string()),
            // Edges leave out archived and deleted objects unless asked for them.
            ("effective_status", serde_json::to_string(ALL_EFFECTIVE_STATUSES).expect("strings serialize")),
        ];
        let path = format!("{}/{edge}", self.node(&account.id)?);
        let records = self.all_pages(ctx, Edge { path, params }, |raw| entity_record(edge, &account.id, raw)).await?;
        emit(out, ctx, records).await?;
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
        if stream.name != AD_DAILY.name {
            return Err(self.settings.config_error(format!("no daily stream {}", stream.name)));
        }
        let mut parts: VecDeque<DateWindow> = window.split(AD_DAILY.max_window_days).into();
        while let Some(part) = parts.pop_front() {
            let convert = |raw: &str| performance_record(&account.id, raw, &self.conversions);
            let records = match self.all_pages(ctx, self.insights(&account.id, part)?, convert).await {
                Ok(records) => records,
                Err(error) if is_too_much_data(&error) && part.days() > 1 => {
                    // Meta could not compute this much at once: read the two halves instead.
                    tracing::info!(platform = %PLATFORM, %part, "Meta asked for less data; splitting the date range");
                    for half in part.split(part.days().div_ceil(2)).into_iter().rev() {
                        parts.push_front(half);
                    }
                    continue;
                }
                Err(error) => {
                    // A refused optional field: dropped, and the part read again without it.
                    self.optional.drop_refused(error)?;
                    parts.push_front(part);
                    continue;
                }
            };
            emit(out, ctx, records).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use chrono::{Days, NaiveDate};
    use mdp_core::SourceOptions;
    use mdp_sandbox::{Fault, FaultKind, Sandbox, Scale, World};
    use rust_decimal::Decimal;

    use super::*;
    use crate::http::{HttpDriver, ReportApi, RetryPolicy};
    use crate::source::ADS;
    use crate::Credential;

    fn settings(options: MetaAdsOptions) -> SourceSettings {
        SourceSettings {
            name: "meta".into(),
            platform: PLATFORM,
            base_url: "https://graph.facebook.com".into(),
            api_version: crate::kind(PLATFORM).default_api_version.into(),
            accounts: vec!["act_123".into(), "456".into()],
            credentials: BTreeMap::from([("access_token".to_string(), Credential::new("secret-token"))]),
            token_url: None,
            options: SourceOptions::MetaAds(options),
        }
    }

    #[test]
    fn account_ids_are_checked_and_options_applied() {
        let source = MetaAds::new(settings(MetaAdsOptions::default())).unwrap();
        assert_eq!(source.conversion_action_types(), MetaAdsOptions::default().conversion_action_types.as_slice());
        assert_eq!(source.node("act_123").unwrap(), "act_123");
        assert_eq!(source.node("456").unwrap(), "act_456");
        let small = MetaAds::new(settings(MetaAdsOptions { page_size: 25, ..MetaAdsOptions::default() })).unwrap();
        let edge = small.insights("456", DateWindow::new(NaiveDate::MIN, NaiveDate::MIN).unwrap()).unwrap();
        let request = small.api.request(&edge, Some(&"c2".to_string()));
        assert_eq!(
            small.api.endpoint().path_of(&request),
            format!("/{}/act_456/insights", crate::kind(PLATFORM).default_api_version)
        );
        assert!(
            request.query.contains(&("limit".into(), "25".to_string()))
                && request.query.contains(&("after".into(), "c2".to_string()))
        );
        let mut wrong = settings(MetaAdsOptions::default());
        wrong.accounts = vec!["acct-1".into()];
        assert!(matches!(MetaAds::new(wrong), Err(SourceError::Config { .. })));
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
    }

    async fn sandboxed(scale: Scale, options: MetaAdsOptions) -> (Arc<Sandbox>, MetaAds, ReadContext) {
        let sandbox = Sandbox::new(World::new(42, today(), scale));
        let (addr, _) = mdp_sandbox::serve(sandbox.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut s = settings(options);
        s.base_url = format!("http://{addr}");
        s.accounts = sandbox.world.accounts(PLATFORM).map(|a| format!("act_{}", a.id)).collect();
        let policy = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
            request_timeout: Duration::from_secs(20),
            max_rate_limit_wait: Duration::from_secs(1),
        };
        (sandbox, MetaAds::new(s).unwrap(), ReadContext { http: HttpDriver::new(policy).unwrap() })
    }

    async fn daily(
        source: &MetaAds,
        account: &AccountInfo,
        window: DateWindow,
        ctx: &ReadContext,
    ) -> Result<Vec<PerformanceRecord>, SourceError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let result = source.read_daily(&AD_DAILY, account, window, ctx, &tx).await;
        drop(tx);
        let mut rows = Vec::new();
        while let Some(page) = rx.recv().await {
            rows.extend(page);
        }
        result.map(|()| rows)
    }

    fn keys(rows: &[PerformanceRecord]) -> Vec<(NaiveDate, String)> {
        let mut k: Vec<_> = rows.iter().map(|r| (r.date.unwrap(), r.ad_id.clone().unwrap())).collect();
        k.sort();
        k
    }

    #[tokio::test]
    async fn an_expired_cursor_restarts_the_part_once_without_duplicates() {
        let (sandbox, source, ctx) =
            sandboxed(Scale::default(), MetaAdsOptions { page_size: 25, ..MetaAdsOptions::default() }).await;
        let account = source.account(&source.settings.accounts[0], &ctx).await.unwrap();
        assert!(!account.id.starts_with("act_"), "records carry the numeric id");
        let window = DateWindow::new(today() - Days::new(9), today()).unwrap();
        let clean = daily(&source, &account, window, &ctx).await.unwrap();
        assert!(clean.len() > 50, "several pages");

        sandbox.faults.push(Fault { platform: Some(PLATFORM), kind: FaultKind::ExpiredCursor, count: 1 });
        let rows = daily(&source, &account, window, &ctx).await.unwrap();
        assert!(sandbox.faults.injected().contains(&(PLATFORM, FaultKind::ExpiredCursor)));
        assert_eq!(keys(&rows), keys(&clean), "same rows, none twice");

        sandbox.faults.push(Fault { platform: Some(PLATFORM), kind: FaultKind::ExpiredCursor, count: 2 });
        let error = daily(&source, &account, window, &ctx).await.unwrap_err();
        assert!(is_invalid_cursor(&error), "restarts once only: {error}");
    }

    #[tokio::test]
    async fn oversized_queries_are_split_and_deleted_ads_are_read() {
        let scale = Scale { campaigns_per_account: 10, ad_groups_per_campaign: 10, ads_per_ad_group: 10 };
        let (sandbox, source, ctx) = sandboxed(scale, MetaAdsOptions::default()).await;
        let account = source.account(&source.settings.accounts[1], &ctx).await.unwrap();
        let window = DateWindow::new(today() - Days::new(29), today()).unwrap();
        let rows = daily(&source, &account, window, &ctx).await.unwrap();
        let truth = sandbox.truth(PLATFORM, &account.id, window.start(), window.end()).unwrap();
        let spend: Decimal = rows.iter().map(|r| r.spend).sum();
        let truth_spend: i64 = truth.iter().map(|(_, m)| m.spend_micros).sum();
        assert_eq!(spend, Decimal::new(truth_spend, 6));
        let conversions: Decimal = rows.iter().map(|r| r.conversions).sum();
        let defaults = SourceOptions::defaults(PLATFORM);
        let by_definition = sandbox.conversion_truth(&account.id, window.start(), window.end(), &defaults).unwrap();
        let truth_conversions: i64 = by_definition.iter().map(|(_, count, _)| count).sum();
        assert_eq!(conversions, Decimal::new(truth_conversions, 6), "purchase/omni_purchase not double counted");

        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        source.read_entities(&ADS, &account, &ctx, &tx).await.unwrap();
        drop(tx);
        let mut ads = Vec::new();
        while let Some(page) = rx.recv().await {
            ads.extend(page);
        }
        assert!(ads.iter().any(|a| a.status.as_deref() == Some("DELETED")), "deleted ads are listed");
        assert!(ads.iter().all(|a| a.campaign_id.is_some() && a.ad_group_id.is_some()));
    }

    #[tokio::test]
    async fn the_default_look_back_rereads_every_day_meta_restates() {
        let (sandbox, source, ctx) = sandboxed(Scale::default(), MetaAdsOptions::default()).await;
        let account = source.account(&source.settings.accounts[0], &ctx).await.unwrap();
        sandbox.restate();
        // The window an incremental run re-reads with the default look-back, ending today.
        let lookback = u64::from(crate::kind(PLATFORM).default_lookback_days);
        let window = DateWindow::new(today() - Days::new(lookback - 1), today()).unwrap();
        let rows = daily(&source, &account, window, &ctx).await.unwrap();
        let defaults = SourceOptions::defaults(PLATFORM);
        let truth = sandbox.conversion_truth(&account.id, window.start(), window.end(), &defaults).unwrap();
        let mut restated_days = 0;
        for (day, truth_conversions, _) in truth {
            let conversions: Decimal = rows.iter().filter(|r| r.date == Some(day)).map(|r| r.conversions).sum();
            assert_eq!(conversions, Decimal::new(truth_conversions, 6), "{day}: the restated value is read");
            restated_days += usize::from(day + Days::new(mdp_sandbox::world::RESTATED_DAYS) > today());
        }
        assert_eq!(
            restated_days as u64,
            mdp_sandbox::world::RESTATED_DAYS,
            "every restated day is inside the look-back"
        );
    }
}
