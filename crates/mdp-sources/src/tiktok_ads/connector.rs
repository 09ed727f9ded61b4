//! The TikTok connector: `advertiser/info/`, `campaign/get/`, `adgroup/get/`, `ad/get/` and synchronous
//! `report/integrated/get/` at ad level, one day per row; daily reports cover ≤ 30 days.

use std::sync::Arc;

use async_trait::async_trait;
use mdp_core::{DateWindow, TikTokAdsOptions};

use super::api::{List, TikTokApi};
use super::rows::{entity_record, performance_record};
use super::{AD_DAILY, PLATFORM, STREAMS};
use crate::error::SourceError;
use crate::http::HttpRequest;
use crate::optional::OptionalFields;
use crate::record::{EntityRecord, PerformanceRecord};
use crate::source::{AccountInfo, ReadContext, Sink, Source, SourceSettings, StreamSpec};

/// The report's metrics besides the conversion pair.
const REPORT_METRICS: &[&str] = &[
    "campaign_id",
    "adgroup_id",
    "spend",
    "impressions",
    "clicks",
    "video_play_actions",
    "likes",
    "comments",
    "shares",
];

#[derive(Debug)]
pub struct TikTokAds {
    settings: SourceSettings,
    conversions: TikTokAdsOptions,
    optional: OptionalFields,
    api: Arc<TikTokApi>,
}

impl TikTokAds {
    pub fn new(settings: SourceSettings) -> Result<TikTokAds, SourceError> {
        let api = Arc::new(TikTokApi::new(&settings)?);
        let conversions = settings.options.tiktok_ads().cloned().unwrap_or_default();
        let optional = OptionalFields::new(&settings, &[]);
        Ok(TikTokAds { settings, conversions, optional, api })
    }

    /// The report's `metrics` parameter: the standard metrics and the configured conversion pair.
    fn report_metrics(&self) -> String {
        let mut metrics: Vec<&str> = self.optional.requested(REPORT_METRICS.iter().copied());
        metrics.push(&self.conversions.conversion_metric);
        metrics.extend(self.conversions.conversion_value_metric.as_deref());
        serde_json::to_string(&metrics).expect("a list of strings serializes")
    }
}

fn text(v: &serde_json::Value, key: &str) -> Option<String> {
    crate::json::text(&v[key])
}

#[async_trait]
impl Source for TikTokAds {
    fn settings(&self) -> &SourceSettings {
        &self.settings
    }

    fn streams(&self) -> &'static [StreamSpec] {
        STREAMS
    }

    async fn account(&self, account_id: &str, ctx: &ReadContext) -> Result<AccountInfo, SourceError> {
        let ids = serde_json::to_string(&[account_id]).expect("a list of strings serializes");
        let fields = r#"["advertiser_id","name","currency","timezone","display_timezone","status"]"#;
        let request = HttpRequest::get("advertiser/info/").param("advertiser_ids", ids).param("fields", fields);
        let answer = ctx.http.json(self.api.as_ref(), &request).await?;
        let info = answer["data"]["list"]
            .as_array()
            .and_then(|l| l.iter().find(|a| text(a, "advertiser_id").as_deref() == Some(account_id)))
            .cloned()
            .ok_or_else(|| SourceError::Platform {
                platform: PLATFORM,
                code: "not_found".into(),
                message: format!("advertiser {account_id} is not visible to this token"),
            })?;
        let currency =
            text(&info, "currency").ok_or_else(|| SourceError::malformed(PLATFORM, "advertiser without currency"))?;
        let timezone = text(&info, "display_timezone")
            .or_else(|| text(&info, "timezone"))
            .ok_or_else(|| SourceError::malformed(PLATFORM, "advertiser without time zone"))?;
        let (name, status) = (text(&info, "name"), text(&info, "status"));
        Ok(AccountInfo::new(account_id.to_string(), name, status, currency, timezone, info.to_string()))
    }

    async fn read_entities(
        &self,
        stream: &StreamSpec,
        account: &AccountInfo,
        ctx: &ReadContext,
        out: &Sink<EntityRecord>,
    ) -> Result<(), SourceError> {
        let (path, id_key, name_key) = match stream.name {
            "campaigns" => ("campaign/get/", "campaign_id", "campaign_name"),
            "ad_groups" => ("adgroup/get/", "adgroup_id", "adgroup_name"),
            "ads" => ("ad/get/", "ad_id", "ad_name"),
            other => return Err(self.settings.config_error(format!("no entity stream {other}"))),
        };
        let list = List { path, params: vec![("advertiser_id", account.id.clone())] };
        let mut pages = ctx.http.pages(&self.api, list);
        while pages.send_next(ctx, out, |raw| entity_record(path, id_key, name_key, &account.id, raw)).await? {}
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
        let convert = |row: &str| {
            let mut record = performance_record(&account.id, row, &self.conversions)?;
            self.optional.clear(&mut record);
            Ok::<_, SourceError>(record)
        };
        for part in window.split(AD_DAILY.max_window_days) {
            // TikTok checks the metrics before it answers a first page: a refused optional metric is
            // dropped and the part asked for again without it.
            loop {
                let params = vec![
                    ("advertiser_id", account.id.clone()),
                    ("report_type", "BASIC".to_string()),
                    ("service_type", "AUCTION".to_string()),
                    ("data_level", "AUCTION_AD".to_string()),
                    ("dimensions", r#"["ad_id","stat_time_day"]"#.to_string()),
                    ("metrics", self.report_metrics()),
                    ("start_date", part.start().to_string()),
                    ("end_date", part.end().to_string()),
                ];
                let mut pages = ctx.http.pages(&self.api, List { path: "report/integrated/get/", params });
                let mut first = true;
                let result = loop {
                    match pages.send_next(ctx, out, convert).await {
                        Ok(true) => first = false,
                        Ok(false) => break Ok(()),
                        Err(error) => break Err(error),
                    }
                };
                match result {
                    Ok(()) => break,
                    Err(error) if first => self.optional.drop_refused(error)?,
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use chrono::NaiveDate;
    use mdp_core::SourceOptions;
    use mdp_sandbox::{Sandbox, Scale, World};

    use super::*;
    use crate::http::{HttpDriver, ReportApi, RetryPolicy};
    use crate::Credential;

    async fn connect(api_version: &str) -> (TikTokAds, String, ReadContext) {
        let sandbox = Sandbox::new(World::new(7, NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(), Scale::default()));
        let (addr, _) = mdp_sandbox::serve(sandbox.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let account = sandbox.world.accounts(PLATFORM).next().unwrap().id.clone();
        let settings = SourceSettings {
            name: "tiktok".into(),
            platform: PLATFORM,
            base_url: format!("http://{addr}"),
            api_version: api_version.into(),
            accounts: vec![account.clone()],
            credentials: BTreeMap::from([("access_token".to_string(), Credential::new("secret-token"))]),
            token_url: None,
            options: SourceOptions::defaults(PLATFORM),
        };
        let policy = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            request_timeout: Duration::from_secs(10),
            max_rate_limit_wait: Duration::from_millis(50),
        };
        (TikTokAds::new(settings).unwrap(), account, ReadContext { http: HttpDriver::new(policy).unwrap() })
    }

    #[tokio::test]
    async fn the_api_version_is_the_path_segment_the_platform_routes() {
        let (source, account, ctx) = connect("v1.3").await;
        let request = HttpRequest::get("advertiser/info/");
        assert_eq!(source.api.endpoint().path_of(&request), "/open_api/v1.3/advertiser/info/");
        assert!(!source.api.endpoint().headers().keys().any(|h| h.as_str().contains("version")), "not a header");
        assert_eq!(source.account(&account, &ctx).await.unwrap().id, account, "the served version reads");

        let (old, account, ctx) = connect("v1.2").await;
        match old.account(&account, &ctx).await.unwrap_err() {
            SourceError::SunsetVersion { version, default, .. } => {
                assert_eq!((version.as_str(), default.as_str()), ("v1.2", "v1.3"))
            }
            other => panic!("the sandbox routes /open_api/v1.2/ to TikTok's version error: {other}"),
        }
    }

    #[tokio::test]
    async fn the_token_travels_in_the_access_token_header_only() {
        let (source, _, _) = connect("v1.3").await;
        let headers = source.api.endpoint().headers();
        assert_eq!(headers["access-token"], "secret-token");
        assert!(headers["access-token"].is_sensitive());
        assert!(!headers.contains_key("authorization"));
    }
}
