//! The TikTok Business API connector: `advertiser/info/`, `campaign/get/`, `adgroup/get/`, `ad/get/`
//! and synchronous `report/integrated/get/` at ad level, one day per row.
//!
//! Traps handled: errors arrive as HTTP 200 with a non-zero `code`; array parameters are JSON in the
//! query string; numbers are strings; dates read `YYYY-MM-DD 00:00:00`; daily reports cover ≤ 30 days;
//! page paging up to 1000 rows per page.

use async_trait::async_trait;
use chrono::NaiveDate;
use mdp_core::{DateWindow, Platform};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::SourceError;
use crate::http::{Answer, Verdict};
use crate::record::{EntityRecord, PerformanceRecord};
use crate::source::{
    emit, AccountInfo, ReadContext, Sink, Source, SourceSettings, StreamKind, StreamSpec, ADS, AD_GROUPS, CAMPAIGNS,
};

const PLATFORM: Platform = Platform::TikTokAds;
const PAGE_SIZE: usize = 1000;

/// TikTok answers at most 30 days per daily report request.
pub const AD_DAILY: StreamSpec = StreamSpec {
    name: "ad_daily",
    kind: StreamKind::Daily,
    max_window_days: 30,
    description:
        "ad × day: spend, impressions, clicks, conversions, purchase value, video views, likes, comments, shares",
};

pub(crate) const STREAMS: &[StreamSpec] = &[CAMPAIGNS, AD_GROUPS, ADS, AD_DAILY];

const REPORT_METRICS: &[&str] = &[
    "campaign_id",
    "adgroup_id",
    "spend",
    "impressions",
    "clicks",
    "conversion",
    "total_purchase_value",
    "video_play_actions",
    "likes",
    "comments",
    "shares",
];

#[derive(Debug)]
pub struct TikTokAds {
    settings: SourceSettings,
}

impl TikTokAds {
    pub fn new(settings: SourceSettings) -> Result<TikTokAds, SourceError> {
        settings.credential("access_token")?;
        Ok(TikTokAds { settings })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/open_api/{}/{path}", self.settings.base(), self.settings.api_version)
    }

    async fn get(&self, ctx: &ReadContext, path: &str, query: &[(&str, String)]) -> Result<Value, SourceError> {
        let token = self.settings.credential("access_token")?;
        let header = crate::json::sensitive_header(&self.settings.name, "access_token", token.expose())?;
        let url = self.url(path);
        let mut value = ctx
            .http
            .send(
                PLATFORM,
                |client| client.get(&url).header("Access-Token", header.clone()).query(query),
                |a| self.classify(a),
            )
            .await?;
        Ok(value.get_mut("data").map(Value::take).unwrap_or(Value::Null))
    }

    /// A report page as text: a page with `code` 0 and data is read with borrowed, typed structs
    /// ([`ReportPage`]) instead of a `Value` tree.
    async fn get_report_page(&self, ctx: &ReadContext, query: &[(&str, String)]) -> Result<String, SourceError> {
        let token = self.settings.credential("access_token")?;
        let header = crate::json::sensitive_header(&self.settings.name, "access_token", token.expose())?;
        let url = self.url("report/integrated/get/");
        ctx.http
            .send_text(
                PLATFORM,
                |client| client.get(&url).header("Access-Token", header.clone()).query(query),
                |a| self.classify(a),
                |text| serde_json::from_str::<ReportPage<'_>>(text).is_ok_and(|p| p.code == 0 && p.data.is_some()),
            )
            .await
    }

    fn classify(&self, answer: Answer<'_>) -> Verdict {
        if answer.status == reqwest::StatusCode::NOT_FOUND {
            let message = answer
                .json
                .as_ref()
                .map(|v| v["message"].as_str().unwrap_or("not found").to_string())
                .unwrap_or_default();
            return Verdict::Fail(SourceError::SunsetVersion {
                platform: PLATFORM,
                version: self.settings.api_version.clone(),
                default: crate::kind(PLATFORM).default_api_version.into(),
                message,
            });
        }
        let verdict = answer.standard(PLATFORM);
        let Verdict::Done(body) = verdict else { return verdict };
        let code = body["code"].as_i64().unwrap_or(-1);
        let message = body["message"].as_str().unwrap_or("").to_string();
        match code {
            0 => Verdict::Done(body),
            // Rate limited: "requests from this app are temporarily restricted".
            40100 | 40133 => Verdict::Retry {
                after: None,
                error: SourceError::RateLimited { platform: PLATFORM, attempts: 0, code: code.to_string(), message },
            },
            // System errors and maintenance: transient.
            50000 | 50002 | 51021 | 60001 => Verdict::Retry {
                after: None,
                error: SourceError::Transport {
                    platform: PLATFORM,
                    attempts: 0,
                    message: format!("code {code}: {message}"),
                },
            },
            40001 | 40104 | 40105 => {
                Verdict::Fail(SourceError::Auth { platform: PLATFORM, code: code.to_string(), message })
            }
            _ => Verdict::Fail(SourceError::Platform { platform: PLATFORM, code: code.to_string(), message }),
        }
    }

    /// Every page of a paged list endpoint.
    async fn pages(
        &self,
        ctx: &ReadContext,
        path: &str,
        query: Vec<(&'static str, String)>,
        mut each_page: impl FnMut(Vec<Value>) -> Result<(), SourceError>,
    ) -> Result<(), SourceError> {
        let mut page = 1;
        loop {
            let mut q = query.clone();
            q.push(("page", page.to_string()));
            q.push(("page_size", PAGE_SIZE.to_string()));
            let mut data = self.get(ctx, path, &q).await?;
            let list = take_list(&mut data);
            each_page(list)?;
            let total_page = data["page_info"]["total_page"].as_u64().unwrap_or(1);
            if page >= total_page {
                return Ok(());
            }
            page += 1;
        }
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
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
        let fields = r#"["advertiser_id","name","currency","timezone","display_timezone","status"]"#.to_string();
        let data = self.get(ctx, "advertiser/info/", &[("advertiser_ids", ids), ("fields", fields)]).await?;
        let info = data["list"]
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
        let mut pages = Vec::new();
        self.pages(ctx, path, vec![("advertiser_id", account.id.clone())], |list| {
            let records: Result<Vec<EntityRecord>, SourceError> = list
                .into_iter()
                .map(|item| {
                    Ok(EntityRecord {
                        account_id: account.id.clone(),
                        id: text(&item, id_key)
                            .ok_or_else(|| SourceError::malformed(PLATFORM, format!("{path} item without {id_key}")))?,
                        name: text(&item, name_key),
                        // secondary_status tells deleted from disabled; operation_status does not.
                        status: text(&item, "secondary_status").or_else(|| text(&item, "operation_status")),
                        campaign_id: if id_key == "campaign_id" { None } else { text(&item, "campaign_id") },
                        ad_group_id: if id_key == "ad_id" { text(&item, "adgroup_id") } else { None },
                        currency: None,
                        timezone: None,
                        payload: item.to_string(),
                    })
                })
                .collect();
            pages.push(records?);
            Ok(())
        })
        .await?;
        for page in pages {
            emit(out, ctx, page).await?;
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
        if stream.name != AD_DAILY.name {
            return Err(self.settings.config_error(format!("no daily stream {}", stream.name)));
        }
        let metrics = serde_json::to_string(REPORT_METRICS).expect("serializable");
        for part in window.split(AD_DAILY.max_window_days) {
            let mut page = 1u64;
            loop {
                let query = vec![
                    ("advertiser_id", account.id.clone()),
                    ("report_type", "BASIC".to_string()),
                    ("service_type", "AUCTION".to_string()),
                    ("data_level", "AUCTION_AD".to_string()),
                    ("dimensions", r#"["ad_id","stat_time_day"]"#.to_string()),
                    ("metrics", metrics.clone()),
                    ("start_date", part.start().to_string()),
                    ("end_date", part.end().to_string()),
                    ("page", page.to_string()),
                    ("page_size", PAGE_SIZE.to_string()),
                ];
                let text = self.get_report_page(ctx, &query).await?;
                let report: ReportPage<'_> = serde_json::from_str(&text)
                    .map_err(|e| SourceError::malformed(PLATFORM, format!("unreadable report page ({e})")))?;
                let data = report.data.ok_or_else(|| SourceError::malformed(PLATFORM, "report page without data"))?;
                let mut records = Vec::with_capacity(data.list.len());
                for row in data.list {
                    records.push(performance_record(&account.id, row)?);
                }
                emit(out, ctx, records).await?;
                let total_page = data.page_info.and_then(|p| p.total_page).unwrap_or(1);
                if page >= total_page {
                    break;
                }
                page += 1;
            }
        }
        Ok(())
    }
}

/// A page's `list`, moved out of the answer (no copy of the rows).
fn take_list(data: &mut Value) -> Vec<Value> {
    match data.get_mut("list").map(Value::take) {
        Some(Value::Array(list)) => list,
        _ => Vec::new(),
    }
}

/// A report page, read without building a `Value` tree: its rows stay borrowed text.
#[derive(Deserialize)]
struct ReportPage<'a> {
    code: i64,
    #[serde(borrow, default)]
    data: Option<ReportData<'a>>,
}

#[derive(Deserialize)]
struct ReportData<'a> {
    #[serde(borrow)]
    list: Vec<&'a RawValue>,
    #[serde(default)]
    page_info: Option<PageInfo>,
}

#[derive(Deserialize)]
struct PageInfo {
    #[serde(default)]
    total_page: Option<u64>,
}

/// The fields of a report row mdp reads; the rest stays in the payload.
#[derive(Deserialize)]
struct ReportRow<'a> {
    #[serde(borrow)]
    dimensions: ReportDimensions<'a>,
    #[serde(borrow)]
    metrics: ReportMetrics<'a>,
}

#[derive(Deserialize)]
struct ReportDimensions<'a> {
    #[serde(borrow, default)]
    ad_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stat_time_day: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ReportMetrics<'a> {
    #[serde(borrow, default)]
    campaign_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    adgroup_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    spend: Option<&'a RawValue>,
    #[serde(borrow, default)]
    impressions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    clicks: Option<&'a RawValue>,
    #[serde(borrow, default)]
    conversion: Option<&'a RawValue>,
    #[serde(borrow, default)]
    total_purchase_value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    video_play_actions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    likes: Option<&'a RawValue>,
    #[serde(borrow, default)]
    comments: Option<&'a RawValue>,
    #[serde(borrow, default)]
    shares: Option<&'a RawValue>,
}

/// A report row read through [`ReportRow`], with the API's own text of the row as payload.
fn performance_record(account_id: &str, raw: &RawValue) -> Result<PerformanceRecord, SourceError> {
    use crate::json::{decimal, integer, raw_scalar as v};
    let row: ReportRow<'_> =
        serde_json::from_str(raw.get()).map_err(|e| SourceError::malformed(PLATFORM, format!("report row: {e}")))?;
    let (d, m) = (&row.dimensions, &row.metrics);
    let day = crate::json::text(&v(d.stat_time_day))
        .ok_or_else(|| SourceError::malformed(PLATFORM, "report row without stat_time_day"))?;
    let date = NaiveDate::parse_from_str(day.get(..10).unwrap_or(&day), "%Y-%m-%d")
        .map_err(|_| SourceError::malformed(PLATFORM, format!("stat_time_day {day:?} is not a date")))?;
    let metric = |name: &str, raw| decimal(PLATFORM, &format!("metric {name}"), &v(raw));
    let count = |name: &str, raw| integer(PLATFORM, &format!("metric {name}"), &v(raw));
    Ok(PerformanceRecord {
        date: Some(date),
        account_id: account_id.to_string(),
        campaign_id: crate::json::text(&v(m.campaign_id)),
        ad_group_id: crate::json::text(&v(m.adgroup_id)),
        ad_id: crate::json::text(&v(d.ad_id)),
        impressions: count("impressions", m.impressions)?,
        clicks: count("clicks", m.clicks)?,
        spend: metric("spend", m.spend)?,
        conversions: metric("conversion", m.conversion)?,
        conversion_value: metric("total_purchase_value", m.total_purchase_value)?,
        video_views: Some(count("video_play_actions", m.video_play_actions)?),
        likes: Some(count("likes", m.likes)?),
        comments: Some(count("comments", m.comments)?),
        shares: Some(count("shares", m.shares)?),
        payload: raw.get().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(row: Value) -> Box<RawValue> {
        RawValue::from_string(row.to_string()).unwrap()
    }
    use std::str::FromStr;

    use rust_decimal::Decimal;

    #[test]
    fn report_rows_parse_string_numbers_and_dates() {
        let row = serde_json::json!({
            "dimensions": {"ad_id": "17", "stat_time_day": "2026-06-01 00:00:00"},
            "metrics": {"campaign_id": "1", "adgroup_id": "2", "spend": "12.34", "impressions": "1000", "clicks": "10",
                        "conversion": "1.5", "total_purchase_value": "45.00", "video_play_actions": "300",
                        "likes": "2", "comments": "0", "shares": "1"}
        });
        let r = performance_record("adv", &raw(row)).unwrap();
        assert_eq!(r.date, NaiveDate::from_ymd_opt(2026, 6, 1));
        assert_eq!((r.impressions, r.clicks), (1000, 10));
        assert_eq!(r.spend, Decimal::from_str("12.34").unwrap());
        assert_eq!(r.conversions, Decimal::from_str("1.5").unwrap());
        assert_eq!((r.ad_id.as_deref(), r.ad_group_id.as_deref()), (Some("17"), Some("2")));
    }

    #[test]
    fn a_non_number_metric_is_reported_not_zeroed() {
        let row = serde_json::json!({"dimensions": {"ad_id": "1", "stat_time_day": "2026-06-01 00:00:00"}, "metrics": {"spend": "abc"}});
        assert!(matches!(performance_record("adv", &raw(row)), Err(SourceError::Malformed { .. })));
    }
}
