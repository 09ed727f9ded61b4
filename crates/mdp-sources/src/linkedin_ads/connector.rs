//! The LinkedIn Marketing API connector: `adAccounts/{id}`, the account's `adCampaignGroups`
//! (`q=search`), `adCampaigns` (`q=search`) and `creatives` (`q=criteria`) finders, and
//! `adAnalytics?q=analytics&pivot=CREATIVE&timeGranularity=DAILY`, one creative and UTC day per row.
//!
//! Requests, finder pages and error classification are in `api.rs`; `adAnalytics` queries and merging
//! in `report.rs`.
//!
//! Traps handled:
//! - Rest.li 2.0 query syntax (`List(…)`, `(k:v)`) is written by hand with URNs percent-encoded inside,
//!   so nothing is double-encoded;
//! - `adAnalytics` has no pagination and takes at most 20 fields: the metric list is split into requests
//!   of ≤ 20 fields, each with `dateRange` and `pivotValues` (LinkedIn returns only the fields asked for),
//!   and the answers are merged on (pivot values, day);
//! - no activity is an empty `elements`; an unreadable account too (so `account()` is read first);
//! - report days are UTC: [`AccountInfo::timezone`] is `UTC` (the account has no reporting zone);
//! - analytics rows name only the creative: the creative → campaign → campaign group map is read from
//!   the finders (every status: archived entities keep their history) to fill the parents;
//! - money (`costInLocalCurrency`, `conversionValueInLocalCurrency`) is a decimal string, counts are
//!   integers;
//! - named conversions (`conversion_rules`): the creative rows count every conversion rule of the
//!   account, so the chosen rules' conversions are read apart, with
//!   `adAnalytics?q=statistics&pivots=List(CREATIVE,CONVERSION)` (one element per creative, rule and
//!   day; `pivotValues` classified by URN, not by position), the rules named in mdp.yml resolved to ids
//!   through `conversions?q=account` (a name the account does not have is an error listing its rules),
//!   and merged into the creative rows; a creative-day with conversions but no delivery becomes a row.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use mdp_core::{DateWindow, LinkedInAdsOptions};
use rust_decimal::Decimal;
use serde_json::Value;

use super::api::{Finder, FinderQuery, LinkedInApi, Query};
use super::report::{analytics_query, conversions_query, field_chunks, merge, Fields, MAX_FIELDS};
use super::{AD_DAILY, PLATFORM, STREAMS};
use crate::error::SourceError;
use crate::http::HttpRequest;
use crate::optional::OptionalFields;
use crate::record::{EntityRecord, PerformanceRecord};
use crate::source::{emit, AccountInfo, ReadContext, Sink, Source, SourceSettings, StreamSpec};

/// The metrics `ad_daily` always reads; the optional ones (`mdp_core`'s list) follow, and the configured
/// conversion field. More than one request's worth: they are split and merged.
const REQUIRED_METRICS: &[&str] =
    &["impressions", "clicks", "costInLocalCurrency", "externalWebsiteConversions", "conversionValueInLocalCurrency"];

/// Every metric of `ad_daily` before `skip_fields` and the conversion option.
fn report_metrics() -> impl Iterator<Item = &'static str> {
    REQUIRED_METRICS.iter().chain(mdp_core::platforms::linkedin_ads::OPTIONAL_FIELDS).copied()
}

#[derive(Debug)]
pub struct LinkedInAds {
    settings: SourceSettings,
    conversions: LinkedInAdsOptions,
    optional: OptionalFields,
    api: Arc<LinkedInApi>,
    /// Each account's creative → (campaign group, campaign) map, read once per ingest (not per
    /// window) and read again when a report names a creative it does not know.
    parents: std::sync::Mutex<HashMap<String, std::sync::Arc<HashMap<String, Parents>>>>,
    /// Each account's chosen conversion rules (id → name), resolved once per ingest.
    rules: std::sync::Mutex<HashMap<String, std::sync::Arc<HashMap<String, String>>>>,
}

impl LinkedInAds {
    pub fn new(settings: SourceSettings) -> Result<LinkedInAds, SourceError> {
        let api = Arc::new(LinkedInApi::new(&settings)?);
        let conversions = settings.options.linkedin_ads().cloned().unwrap_or_default();
        // The configured conversion fields are required, whatever the platform's optional list says.
        let required: Vec<&str> =
            [Some(conversions.conversion_metric.as_str()), conversions.conversion_value_metric.as_deref()]
                .into_iter()
                .flatten()
                .collect();
        let optional = OptionalFields::new(&settings, &required);
        Ok(LinkedInAds { settings, conversions, optional, api, parents: Default::default(), rules: Default::default() })
    }

    /// The numeric account id (`123` or `urn:li:sponsoredAccount:123` in mdp.yml).
    fn account_number(&self, account_id: &str) -> Result<String, SourceError> {
        let id = account_id.trim().strip_prefix("urn:li:sponsoredAccount:").unwrap_or(account_id.trim());
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.settings.config_error(format!(
                "LinkedIn ad account ids are numbers (as in urn:li:sponsoredAccount:123), not {account_id:?}"
            )));
        }
        Ok(id.to_string())
    }

    /// GET `{base}/rest/{path_and_query}`; the query string is already Rest.li-encoded.
    async fn get(&self, ctx: &ReadContext, path_and_query: &str) -> Result<Value, SourceError> {
        ctx.http.json(self.api.as_ref(), &HttpRequest::get(path_and_query)).await
    }

    /// Every element of a finder (for the hierarchy maps; entity streams emit page by page instead).
    async fn finder_all(&self, ctx: &ReadContext, finder: Finder, account_id: &str) -> Result<Vec<Value>, SourceError> {
        let query = FinderQuery { finder, account_id: account_id.to_string() };
        ctx.http.pages(&self.api, query.into()).collect(tree).await
    }

    /// LinkedIn campaign id → campaign group id.
    async fn campaign_groups_of(
        &self,
        ctx: &ReadContext,
        account_id: &str,
    ) -> Result<HashMap<String, Option<String>>, SourceError> {
        let campaigns = self.finder_all(ctx, Finder::Campaigns, account_id).await?;
        campaigns
            .iter()
            .map(|c| {
                Ok((required_id(c, "sponsoredCampaign")?, urn_or_id(&c["campaignGroup"], "sponsoredCampaignGroup")))
            })
            .collect()
    }
}

/// An id as mdp keeps it: the numeric part of a URN, or the number itself.
fn urn_or_id(value: &Value, kind: &str) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => {
            let id = s
                .strip_prefix("urn:li:")
                .and_then(|rest| rest.strip_prefix(kind))
                .and_then(|rest| rest.strip_prefix(':'))
                .unwrap_or(s);
            (!id.is_empty()).then(|| id.to_string())
        }
        _ => None,
    }
}

fn required_id(item: &Value, kind: &str) -> Result<String, SourceError> {
    urn_or_id(&item["id"], kind).ok_or_else(|| SourceError::malformed(PLATFORM, format!("a {kind} without id")))
}

/// An element as a JSON tree (entities: few, read by key).
fn tree(raw: &str) -> Result<Value, SourceError> {
    serde_json::from_str(raw).map_err(|e| SourceError::malformed(PLATFORM, format!("unreadable element ({e})")))
}

fn text(v: &Value, key: &str) -> Option<String> {
    crate::json::text(&v[key])
}

#[async_trait]
impl Source for LinkedInAds {
    fn settings(&self) -> &SourceSettings {
        &self.settings
    }

    fn streams(&self) -> &'static [StreamSpec] {
        STREAMS
    }

    async fn account(&self, account_id: &str, ctx: &ReadContext) -> Result<AccountInfo, SourceError> {
        let id = self.account_number(account_id)?;
        let info = self.get(ctx, &format!("adAccounts/{id}")).await?;
        let currency =
            text(&info, "currency").ok_or_else(|| SourceError::malformed(PLATFORM, "ad account without currency"))?;
        // Report days are UTC days; the payload keeps whatever the account says about itself.
        let timezone = "UTC".to_string();
        Ok(AccountInfo::new(id, text(&info, "name"), text(&info, "status"), currency, timezone, info.to_string()))
    }

    async fn read_entities(
        &self,
        stream: &StreamSpec,
        account: &AccountInfo,
        ctx: &ReadContext,
        out: &Sink<EntityRecord>,
    ) -> Result<(), SourceError> {
        let finder = match stream.name {
            "campaigns" => Finder::CampaignGroups,
            "ad_groups" => Finder::Campaigns,
            "ads" => Finder::Creatives,
            other => return Err(self.settings.config_error(format!("no entity stream {other}"))),
        };
        // Creatives name their campaign only; the campaign names its group.
        let groups =
            if finder == Finder::Creatives { self.campaign_groups_of(ctx, &account.id).await? } else { HashMap::new() };
        let mut pages = ctx.http.pages(&self.api, FinderQuery { finder, account_id: account.id.clone() }.into());
        while let Some(elements) = pages.next_page(tree).await? {
            let mut records = Vec::with_capacity(elements.len());
            for item in elements {
                let record = match finder {
                    Finder::CampaignGroups => EntityRecord {
                        account_id: account.id.clone(),
                        id: required_id(&item, "sponsoredCampaignGroup")?,
                        name: text(&item, "name"),
                        status: text(&item, "status"),
                        campaign_id: None,
                        ad_group_id: None,
                        currency: None,
                        timezone: None,
                        payload: item.to_string(),
                    },
                    Finder::Campaigns => EntityRecord {
                        account_id: account.id.clone(),
                        id: required_id(&item, "sponsoredCampaign")?,
                        name: text(&item, "name"),
                        status: text(&item, "status"),
                        campaign_id: urn_or_id(&item["campaignGroup"], "sponsoredCampaignGroup"),
                        ad_group_id: None,
                        currency: None,
                        timezone: None,
                        payload: item.to_string(),
                    },
                    Finder::Creatives => {
                        let campaign = urn_or_id(&item["campaign"], "sponsoredCampaign");
                        EntityRecord {
                            account_id: account.id.clone(),
                            id: required_id(&item, "sponsoredCreative")?,
                            name: text(&item, "name"),
                            status: text(&item, "intendedStatus"),
                            campaign_id: campaign.as_ref().and_then(|c| groups.get(c).cloned().flatten()),
                            ad_group_id: campaign,
                            currency: None,
                            timezone: None,
                            payload: item.to_string(),
                        }
                    }
                };
                records.push(record);
            }
            emit(out, ctx, records).await?;
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
        let mut parents = self.parents_of(ctx, &account.id, false).await?;
        // The configured conversion field joins the list (it is asked for once if already there).
        let mut metrics: Vec<&str> = report_metrics().collect();
        metrics.push(&self.conversions.conversion_metric);
        for part in window.split(AD_DAILY.max_window_days) {
            // Every chunk's answer is kept as text until the rows are merged from it. A refused optional
            // field is dropped and the part asked for again without it.
            let answers = loop {
                let chunks = field_chunks(&self.optional.requested(metrics.iter().copied()), MAX_FIELDS);
                let read = async {
                    let mut answers = Vec::with_capacity(chunks.len());
                    for fields in &chunks {
                        let query =
                            Query::Analytics(format!("adAnalytics?{}", analytics_query(&account.id, part, fields)));
                        let answer = ctx.http.pages(&self.api, query).next_text().await?;
                        answers.push(
                            answer.ok_or_else(|| SourceError::malformed(PLATFORM, "adAnalytics gave no answer"))?,
                        );
                    }
                    Ok::<_, SourceError>(answers)
                };
                match read.await {
                    Ok(answers) => break answers,
                    Err(error) => self.optional.drop_refused(error)?,
                }
            };
            let mut rows: BTreeMap<_, Fields<'_>> = BTreeMap::new();
            for (body, elements) in &answers {
                for element in elements {
                    merge(&mut rows, &body[element.clone()])?;
                }
            }
            // A creative made since the map was read: read it again, once.
            let unknown = rows
                .keys()
                .any(|(_, pivots)| creative_id(pivots).is_some_and(|creative| !parents.contains_key(creative)));
            if unknown {
                parents = self.parents_of(ctx, &account.id, true).await?;
            }
            let mut records = Vec::with_capacity(rows.len());
            for ((date, pivots), row) in rows {
                if !part.contains(date) {
                    return Err(SourceError::malformed(
                        PLATFORM,
                        format!("adAnalytics returned {date}, outside {}..{}", part.start(), part.end()),
                    ));
                }
                let mut record = performance_record(&account.id, date, &pivots, &row, &parents, &self.conversions)?;
                self.optional.clear(&mut record);
                records.push(record);
            }
            drop(answers);
            if !self.conversions.conversion_rules.is_empty() {
                self.merge_rule_conversions(ctx, &account.id, part, &parents, &mut records).await?;
            }
            emit(out, ctx, records).await?;
        }
        Ok(())
    }
}

impl LinkedInAds {
    /// The account's conversion rules that `conversion_rules` names (id → name), from
    /// `conversions?q=account`; an entry no rule has (by id or name) is a configuration error listing
    /// the account's rules. Cached per account.
    async fn chosen_rules(
        &self,
        ctx: &ReadContext,
        account_id: &str,
    ) -> Result<std::sync::Arc<HashMap<String, String>>, SourceError> {
        if let Some(cached) = self.rules.lock().unwrap_or_else(|e| e.into_inner()).get(account_id) {
            return Ok(cached.clone());
        }
        let query = Query::ConversionRules { account_id: account_id.to_string() };
        let all = ctx.http.pages(&self.api, query).collect(tree).await?;
        let rules: Vec<(String, String)> = all
            .iter()
            .map(|rule| Ok((required_id(rule, "llaPartnerConversion")?, text(rule, "name").unwrap_or_default())))
            .collect::<Result<_, SourceError>>()?;
        let mut chosen = HashMap::new();
        for entry in &self.conversions.conversion_rules {
            let matched: Vec<&(String, String)> =
                rules.iter().filter(|(id, name)| id == entry || name == entry).collect();
            if matched.is_empty() {
                let known: Vec<String> = rules.iter().map(|(id, name)| format!("{name} ({id})")).collect();
                return Err(self.settings.config_error(format!(
                    "LinkedIn account {account_id} has no conversion rule {entry:?} (by name or id); its rules: {}. \
                     Fix conversion_rules in mdp.yml",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                )));
            }
            for (id, name) in matched {
                chosen.insert(id.clone(), name.clone());
            }
        }
        let chosen = std::sync::Arc::new(chosen);
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).insert(account_id.to_string(), chosen.clone());
        Ok(chosen)
    }

    /// Replace the conversions of `records` by those of the chosen conversion rules over `part`, read
    /// per creative and rule; each record's payload gains the rule rows it was summed from
    /// (`_mdp_conversion_rules`). A creative-day with conversions but no delivery row becomes a record
    /// of its own.
    async fn merge_rule_conversions(
        &self,
        ctx: &ReadContext,
        account_id: &str,
        part: DateWindow,
        parents: &HashMap<String, Parents>,
        records: &mut Vec<PerformanceRecord>,
    ) -> Result<(), SourceError> {
        let rules = self.chosen_rules(ctx, account_id).await?;
        let count_field = self.conversions.conversion_metric.as_str();
        let value_field = self.conversions.conversion_value_metric.as_deref();
        let fields: Vec<&str> = ["dateRange", "pivotValues", count_field].into_iter().chain(value_field).collect();
        let query = Query::Analytics(format!("adAnalytics?{}", conversions_query(account_id, part, &fields)));
        let (body, elements) = ctx
            .http
            .pages(&self.api, query)
            .next_text()
            .await?
            .ok_or_else(|| SourceError::malformed(PLATFORM, "adAnalytics gave no answer"))?;
        type Sums = (Decimal, Decimal, Vec<String>);
        let mut by_key: BTreeMap<(chrono::NaiveDate, String), Sums> = BTreeMap::new();
        for element in elements {
            let raw = &body[element];
            let ((date, pivots), row) = super::report::element(raw)?;
            if !part.contains(date) {
                return Err(SourceError::malformed(
                    PLATFORM,
                    format!("adAnalytics returned {date}, outside {}..{}", part.start(), part.end()),
                ));
            }
            // Classified by URN, whatever the order LinkedIn writes them in.
            let creative = pivots.iter().find_map(|p| p.strip_prefix("urn:li:sponsoredCreative:"));
            let rule = pivots.iter().find(|p| p.contains("Conversion:")).and_then(|p| p.rsplit(':').next());
            let (Some(creative), Some(rule)) = (creative, rule) else {
                return Err(SourceError::malformed(
                    PLATFORM,
                    format!("a CONVERSION-pivot element without a creative and a conversion URN: {pivots:?}"),
                ));
            };
            if !rules.contains_key(rule) {
                continue;
            }
            let mut notes = crate::json::Normalized::default();
            let count = crate::json::scalar(row.get(count_field)).decimal(
                PLATFORM,
                format_args!("{count_field}"),
                &mut notes,
            )?;
            let value = match value_field {
                Some(field) => {
                    crate::json::scalar(row.get(field)).decimal(PLATFORM, format_args!("{field}"), &mut notes)?
                }
                None => Decimal::ZERO,
            };
            let sums = by_key.entry((date, creative.to_string())).or_default();
            sums.0 += count;
            sums.1 += value;
            sums.2.push(raw.to_string());
        }
        let with_rules =
            |payload: &str, rows: &[String]| crate::json::with_rows(payload, "_mdp_conversion_rules", rows);
        for record in records.iter_mut() {
            let key = (record.date.expect("daily rows have a date"), record.ad_id.clone().unwrap_or_default());
            let (conversions, value, rows) = by_key.remove(&key).unwrap_or_default();
            (record.conversions, record.conversion_value) = (conversions, value);
            record.payload = with_rules(&record.payload, &rows);
        }
        for ((date, creative), (conversions, value, rows)) in by_key {
            let parent = parents.get(&creative).cloned().unwrap_or_default();
            let mut record = PerformanceRecord {
                date: Some(date),
                account_id: account_id.to_string(),
                campaign_id: parent.campaign,
                ad_group_id: parent.ad_group,
                ad_id: Some(creative),
                impressions: 0,
                clicks: 0,
                spend: Decimal::ZERO,
                conversions,
                conversion_value: value,
                video_views: Some(0),
                likes: Some(0),
                comments: Some(0),
                shares: Some(0),
                payload: with_rules("{}", &rows),
            };
            self.optional.clear(&mut record);
            records.push(record);
        }
        Ok(())
    }

    /// The account's creative → parents map, from the finders (all statuses); cached per account.
    async fn parents_of(
        &self,
        ctx: &ReadContext,
        account_id: &str,
        refresh: bool,
    ) -> Result<std::sync::Arc<HashMap<String, Parents>>, SourceError> {
        if !refresh {
            if let Some(cached) = self.parents.lock().unwrap_or_else(|e| e.into_inner()).get(account_id) {
                return Ok(cached.clone());
            }
        }
        let groups = self.campaign_groups_of(ctx, account_id).await?;
        let mut parents: HashMap<String, Parents> = HashMap::new();
        for creative in self.finder_all(ctx, Finder::Creatives, account_id).await? {
            let ad_group = urn_or_id(&creative["campaign"], "sponsoredCampaign");
            let campaign = ad_group.as_ref().and_then(|g| groups.get(g).cloned().flatten());
            parents.insert(required_id(&creative, "sponsoredCreative")?, Parents { campaign, ad_group });
        }
        let parents = std::sync::Arc::new(parents);
        self.parents.lock().unwrap_or_else(|e| e.into_inner()).insert(account_id.to_string(), parents.clone());
        Ok(parents)
    }
}

/// The creative id of a report row's pivot values (the numeric part of its URN).
fn creative_id<'p>(pivots: &'p [std::borrow::Cow<'_, str>]) -> Option<&'p str> {
    let urn: &str = pivots.first()?;
    let id = urn.strip_prefix("urn:li:sponsoredCreative:").unwrap_or(urn);
    (!id.is_empty()).then_some(id)
}

/// A creative's parents in mdp's terms.
#[derive(Debug, Clone, Default)]
struct Parents {
    /// The LinkedIn campaign group.
    campaign: Option<String>,
    /// The LinkedIn campaign.
    ad_group: Option<String>,
}

fn performance_record(
    account_id: &str,
    date: chrono::NaiveDate,
    pivots: &[std::borrow::Cow<'_, str>],
    row: &Fields<'_>,
    parents: &HashMap<String, Parents>,
    conversions: &LinkedInAdsOptions,
) -> Result<PerformanceRecord, SourceError> {
    let creative = creative_id(pivots).ok_or_else(|| SourceError::malformed(PLATFORM, "element without a creative"))?;
    let parent = parents.get(creative).cloned().unwrap_or_default();
    let metric = |name: &str| crate::json::scalar(row.get(name));
    let integer = |name: &str| metric(name).integer(PLATFORM, format_args!("metric {name}"));
    let mut notes = crate::json::Normalized::default();
    let mut decimal = |name: &str| metric(name).decimal(PLATFORM, format_args!("{name}"), &mut notes);
    let mut record = PerformanceRecord {
        date: Some(date),
        account_id: account_id.to_string(),
        campaign_id: parent.campaign,
        ad_group_id: parent.ad_group,
        ad_id: Some(creative.to_string()),
        impressions: integer("impressions")?,
        clicks: integer("clicks")?,
        spend: decimal("costInLocalCurrency")?,
        conversions: decimal(&conversions.conversion_metric)?,
        conversion_value: match conversions.conversion_value_metric.as_deref() {
            Some(field) => decimal(field)?,
            None => Decimal::ZERO,
        },
        video_views: Some(integer("videoViews")?),
        likes: Some(integer("likes")?),
        comments: Some(integer("comments")?),
        shares: Some(integer("shares")?),
        payload: String::new(),
    };
    record.payload = notes.into_payload(row.to_json());
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use serde_json::json;
    use std::str::FromStr;

    #[test]
    fn the_metric_list_needs_more_than_one_request() {
        let metrics: Vec<&str> = report_metrics().collect();
        let chunks = field_chunks(&metrics, MAX_FIELDS);
        assert!(chunks.len() >= 2, "the split is exercised by every read");
        assert!(chunks.iter().all(|c| c.len() <= MAX_FIELDS));
    }

    #[test]
    fn merged_rows_become_records_with_parents() {
        let key = json!({"start": {"year": 2026, "month": 6, "day": 1}, "end": {"year": 2026, "month": 6, "day": 1}});
        let first = json!({"dateRange": key, "pivotValues": ["urn:li:sponsoredCreative:17"], "impressions": 1000, "clicks": 10,
                           "costInLocalCurrency": "12.34", "externalWebsiteConversions": 2, "conversionValueInLocalCurrency": "45.5"}).to_string();
        let second =
            json!({"dateRange": key, "pivotValues": ["urn:li:sponsoredCreative:17"], "videoViews": 300, "likes": 2})
                .to_string();
        let mut rows = BTreeMap::new();
        merge(&mut rows, &first).unwrap();
        merge(&mut rows, &second).unwrap();
        let parents =
            HashMap::from([("17".to_string(), Parents { campaign: Some("1".into()), ad_group: Some("2".into()) })]);
        let ((date, pivots), row) = rows.into_iter().next().unwrap();
        let r = performance_record("9", date, &pivots, &row, &parents, &LinkedInAdsOptions::default()).unwrap();
        assert_eq!(r.date, chrono::NaiveDate::from_ymd_opt(2026, 6, 1));
        assert_eq!(
            (r.impressions, r.clicks, r.video_views, r.likes, r.comments),
            (1000, 10, Some(300), Some(2), Some(0))
        );
        assert_eq!(r.spend, Decimal::from_str("12.34").unwrap());
        assert_eq!(r.conversions, Decimal::from(2));
        assert_eq!(r.conversion_value, Decimal::from_str("45.5").unwrap());
        assert_eq!(
            (r.ad_id.as_deref(), r.ad_group_id.as_deref(), r.campaign_id.as_deref()),
            (Some("17"), Some("2"), Some("1"))
        );
        let payload: Value = serde_json::from_str(&r.payload).unwrap();
        assert_eq!(payload["pivotValues"][0], "urn:li:sponsoredCreative:17", "the payload keeps the URNs");
        assert_eq!(payload["videoViews"], 300, "the payload holds both answers' fields");
    }

    #[test]
    fn the_configured_conversion_field_is_read_and_no_value_field_means_zero() {
        let key = json!({"start": {"year": 2026, "month": 6, "day": 1}, "end": {"year": 2026, "month": 6, "day": 1}});
        let text =
            json!({"dateRange": key, "pivotValues": ["urn:li:sponsoredCreative:17"], "externalWebsiteConversions": 4,
                          "oneClickLeads": 3, "conversionValueInLocalCurrency": "45.5"})
            .to_string();
        let mut rows = BTreeMap::new();
        merge(&mut rows, &text).unwrap();
        let ((date, pivots), row) = rows.into_iter().next().unwrap();
        let leads = LinkedInAdsOptions {
            conversion_metric: "oneClickLeads".into(),
            conversion_value_metric: None,
            ..Default::default()
        };
        let r = performance_record("9", date, &pivots, &row, &HashMap::new(), &leads).unwrap();
        assert_eq!((r.conversions, r.conversion_value), (Decimal::from(3), Decimal::ZERO));
    }

    #[test]
    fn money_printed_from_a_float_is_read_as_the_float_and_said_in_the_payload() {
        let key = json!({"start": {"year": 2026, "month": 6, "day": 1}, "end": {"year": 2026, "month": 6, "day": 1}});
        // Verbatim as LinkedIn's API answers for some rows (the double nearest 5.63, to 20 digits).
        let text = r#"{"dateRange":KEY,"pivotValues":["urn:li:sponsoredCreative:17"],"impressions":10,"costInLocalCurrency":"5.6299999999999998934","conversionValueInLocalCurrency":"7.5"}"#
            .replace("KEY", &key.to_string());
        let mut rows = BTreeMap::new();
        merge(&mut rows, &text).unwrap();
        let ((date, pivots), row) = rows.into_iter().next().unwrap();
        let r = performance_record("9", date, &pivots, &row, &HashMap::new(), &LinkedInAdsOptions::default()).unwrap();
        assert_eq!(r.spend, Decimal::from_str("5.63").unwrap());
        assert_eq!(r.conversion_value, Decimal::from_str("7.5").unwrap());
        let batch = crate::record::performance_batch(std::slice::from_ref(&r));
        assert!(batch.is_ok(), "the raw layer takes the row: {batch:?}");
        let payload: Value = serde_json::from_str(&r.payload).unwrap();
        assert_eq!(payload["costInLocalCurrency"], "5.6299999999999998934", "the API's text is kept");
        assert_eq!(payload["_mdp_normalized"], json!({"costInLocalCurrency": "5.63"}), "and what mdp read instead");
    }

    #[test]
    fn bad_numbers_are_reported_not_zeroed() {
        let key = json!({"start": {"year": 2026, "month": 6, "day": 1}});
        let bad =
            json!({"dateRange": key, "pivotValues": ["urn:li:sponsoredCreative:17"], "costInLocalCurrency": "abc"})
                .to_string();
        let fraction =
            json!({"dateRange": key, "pivotValues": ["urn:li:sponsoredCreative:17"], "impressions": 1.5}).to_string();
        for text in [&bad, &fraction] {
            let mut rows = BTreeMap::new();
            merge(&mut rows, text).unwrap();
            let ((date, pivots), row) = rows.into_iter().next().unwrap();
            let error = performance_record("9", date, &pivots, &row, &HashMap::new(), &LinkedInAdsOptions::default())
                .unwrap_err();
            assert!(matches!(error, SourceError::Malformed { .. }), "{error:?}");
        }
    }

    #[test]
    fn ids_are_the_numeric_part_of_urns() {
        assert_eq!(
            urn_or_id(&json!("urn:li:sponsoredCampaignGroup:55"), "sponsoredCampaignGroup").as_deref(),
            Some("55")
        );
        assert_eq!(urn_or_id(&json!(55), "sponsoredCampaign").as_deref(), Some("55"));
        assert_eq!(urn_or_id(&Value::Null, "sponsoredCampaign"), None);
    }
}
