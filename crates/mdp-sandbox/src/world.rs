//! The sandbox's deterministic world: accounts, campaigns, ad groups, ads and their daily metrics.
//!
//! Nothing is stored per day: every metric is a pure function of (seed, platform, ad, date, data
//! version), so a world of millions of rows costs no memory and any two servers with the same seed
//! agree. The ground truth ([`World::truth`]) is computed from the same function, so a connector that
//! loses, duplicates or rounds a single row cannot reconcile.
//!
//! Money is held in micros (millionths of the currency unit) as integers; each platform module
//! renders it in its own API's format. Zero-decimal currencies (JPY) only ever get whole units.

use chrono::{Datelike, Days, NaiveDate};
use mdp_core::Platform;

/// Days of history every ad can have before "today".
pub const HISTORY_DAYS: u64 = 180;

/// How many of the most recent days a restatement changes (late-attributed conversions).
pub const RESTATED_DAYS: u64 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub platform: Platform,
    /// As the platform writes it: `1234567890` (Google), `act_…` is added by the Meta API layer.
    pub id: String,
    pub name: String,
    pub currency: &'static str,
    pub timezone: &'static str,
    pub campaigns: Vec<Campaign>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    /// ENABLED / PAUSED / REMOVED in the world's own vocabulary; platforms map it.
    pub status: Status,
    /// Google Performance Max: spend only at campaign level, no ad groups or ads in reports.
    pub performance_max: bool,
    pub ad_groups: Vec<AdGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdGroup {
    pub id: String,
    pub name: String,
    pub status: Status,
    pub ads: Vec<Ad>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ad {
    pub id: String,
    pub name: String,
    pub status: Status,
    /// First day with delivery; earlier days have no rows.
    pub start: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Paused,
    Removed,
}

/// One day of one ad (or of a Performance Max campaign).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Metrics {
    pub impressions: i64,
    pub clicks: i64,
    pub spend_micros: i64,
    /// Conversions in millionths (Google's attribution can give fractions).
    pub conversions_micros: i64,
    pub conversion_value_micros: i64,
    /// Conversions attributed to views with no click (counted in conversions).
    pub view_through_conversions: i64,
    /// Click-through conversions attributed late (added by restatements; counted in conversions):
    /// within 7 days of the click, not within 1.
    pub late_conversions_micros: i64,
    /// The value of one conversion of this unit on this day (per unit: a sum of days means nothing).
    pub price_micros: i64,
    /// Leads: a secondary conversion action (a form sent), click-through only, not in `conversions`.
    pub leads: i64,
    pub lead_value_micros: i64,
    pub video_views: i64,
    pub likes: i64,
    pub comments: i64,
    pub shares: i64,
}

impl Metrics {
    pub fn is_zero(&self) -> bool {
        *self == Metrics::default()
    }
    /// Add `other`'s counts and money to these (`price_micros` is per unit and stays as it is).
    pub fn add(&mut self, other: &Metrics) {
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.spend_micros += other.spend_micros;
        self.conversions_micros += other.conversions_micros;
        self.conversion_value_micros += other.conversion_value_micros;
        self.view_through_conversions += other.view_through_conversions;
        self.late_conversions_micros += other.late_conversions_micros;
        self.leads += other.leads;
        self.lead_value_micros += other.lead_value_micros;
        self.video_views += other.video_views;
        self.likes += other.likes;
        self.comments += other.comments;
        self.shares += other.shares;
    }
}

/// Size of the generated world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub campaigns_per_account: usize,
    pub ad_groups_per_campaign: usize,
    pub ads_per_ad_group: usize,
}

impl Default for Scale {
    fn default() -> Self {
        Scale { campaigns_per_account: 3, ad_groups_per_campaign: 2, ads_per_ad_group: 2 }
    }
}

/// The whole sandbox world.
#[derive(Debug, Clone)]
pub struct World {
    pub seed: u64,
    pub today: NaiveDate,
    pub accounts: Vec<Account>,
}

/// SplitMix64: a tiny, good, deterministic mixer (no dependency, same output everywhere).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash_str(seed: u64, s: &str) -> u64 {
    s.bytes().fold(mix(seed), |h, b| mix(h ^ u64::from(b)))
}

/// Per platform: (account currency, time zone) pairs; includes a zero-decimal currency (JPY).
fn account_profiles(platform: Platform) -> &'static [(&'static str, &'static str)] {
    match platform {
        Platform::GoogleAds => &[("USD", "America/New_York"), ("JPY", "Asia/Tokyo")],
        Platform::MetaAds => &[("EUR", "Europe/Berlin"), ("USD", "America/Los_Angeles")],
        Platform::TikTokAds => &[("GBP", "Europe/London"), ("JPY", "Asia/Tokyo")],
        // LinkedIn reports in UTC whatever the account's time zone.
        Platform::LinkedInAds => &[("EUR", "Europe/Paris"), ("USD", "America/Chicago")],
        Platform::Declared(declared) if declared.as_str() == crate::reddit::NAME => {
            &[("USD", "America/Los_Angeles"), ("EUR", "Europe/Berlin")]
        }
        // Amazon profiles: a marketplace each (amazon.com, amazon.co.jp).
        Platform::Declared(declared) if declared.as_str() == crate::amazon::NAME => {
            &[("USD", "America/Los_Angeles"), ("JPY", "Asia/Tokyo")]
        }
        // Days at local midnight in zones whose offsets change in spring 2026 (March 8 and April 5).
        Platform::Declared(declared) if declared.as_str() == crate::snapchat::NAME => {
            &[("USD", "America/New_York"), ("AUD", "Australia/Sydney")]
        }
        // Pinterest's analytics days are UTC days, whatever the advertiser's zone.
        Platform::Declared(declared) if declared.as_str() == crate::pinterest::NAME => {
            &[("USD", "UTC"), ("GBP", "UTC")]
        }
        Platform::Declared(declared) if declared.as_str() == crate::microsoft::NAME => {
            &[("USD", "America/New_York"), ("EUR", "Europe/Berlin")]
        }
        // X asks for days at midnight with the offset the zone has today: zones with DST, one each side of UTC.
        Platform::Declared(declared) if declared.as_str() == crate::x_ads::NAME => {
            &[("USD", "America/Los_Angeles"), ("EUR", "Europe/Berlin")]
        }
        // Another platform of a connector spec has no imitation here: no accounts.
        Platform::Declared(_) => &[],
    }
}

/// Every platform the sandbox imitates: the built-in ones, then those mdp reads through a connector spec.
pub fn imitated() -> Vec<Platform> {
    let mut platforms = Platform::ALL.to_vec();
    platforms.push(crate::reddit::platform());
    platforms.push(crate::amazon::platform());
    platforms.push(crate::snapchat::platform());
    platforms.push(crate::pinterest::platform());
    platforms.push(crate::microsoft::platform());
    platforms.push(crate::x_ads::platform());
    platforms
}

/// Whether a currency has no minor unit.
pub fn zero_decimal(currency: &str) -> bool {
    matches!(currency, "JPY" | "KRW" | "CLP" | "VND" | "ISK" | "HUF")
}

fn id_for(platform: Platform, seed: u64, kind: &str, path: &str) -> String {
    let h = hash_str(seed, &format!("{platform}/{kind}/{path}"));
    match platform {
        // Numeric ids everywhere; platform-typical lengths.
        Platform::GoogleAds => format!("{}", 1_000_000_000 + h % 8_999_999_999),
        Platform::MetaAds => format!("{}", 23_800_000_000_000_000 + h % 99_999_999_999_999),
        Platform::TikTokAds => format!("{}", 1_700_000_000_000_000_000 + h % 99_999_999_999_999_999),
        Platform::LinkedInAds => format!("{}", 500_000_000 + h % 99_999_999),
        // Snap's ids are UUIDs.
        Platform::Declared(declared) if declared.as_str() == crate::snapchat::NAME => {
            let low = mix(h);
            format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                h >> 32,
                (h >> 16) & 0xffff,
                h & 0xfff,
                0x8000 | (low >> 48) & 0x3fff,
                low & 0xffff_ffff_ffff
            )
        }
        // X's ids are short base-36 words (`18ce54d4x5t` an account, `8wku2` a campaign).
        Platform::Declared(declared) if declared.as_str() == crate::x_ads::NAME => {
            let (digits, mut n) = (if kind == "account" { 11 } else { 5 }, h);
            let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
            (0..digits)
                .map(|_| {
                    let c = alphabet[(n % 36) as usize] as char;
                    n /= 36;
                    c
                })
                .collect()
        }
        Platform::Declared(_) => format!("{}", 10_000_000 + h % 89_999_999),
    }
}

impl World {
    /// The world for `seed`, with "today" as given (tests pin it; `mdp sandbox` uses the real date).
    pub fn new(seed: u64, today: NaiveDate, scale: Scale) -> World {
        let mut accounts = Vec::new();
        for platform in imitated() {
            for (a, (currency, timezone)) in account_profiles(platform).iter().enumerate() {
                let account_path = format!("a{a}");
                let id = id_for(platform, seed, "account", &account_path);
                let mut campaigns = Vec::new();
                for c in 0..scale.campaigns_per_account {
                    let campaign_path = format!("{account_path}/c{c}");
                    // The last campaign of the first Google account is Performance Max.
                    let performance_max = platform == Platform::GoogleAds && c + 1 == scale.campaigns_per_account;
                    let status = match c % 3 {
                        0 => Status::Active,
                        1 => Status::Paused, // paused today, with historical spend
                        _ => Status::Active,
                    };
                    let mut ad_groups = Vec::new();
                    if !performance_max {
                        for g in 0..scale.ad_groups_per_campaign {
                            let group_path = format!("{campaign_path}/g{g}");
                            let mut ads = Vec::new();
                            for n in 0..scale.ads_per_ad_group {
                                let ad_path = format!("{group_path}/n{n}");
                                let h = hash_str(seed, &ad_path);
                                ads.push(Ad {
                                    id: id_for(platform, seed, "ad", &ad_path),
                                    name: format!(
                                        "Ad {c}.{g}.{n} – {}",
                                        ["Carousel", "Video", "Static", "Story"][(h % 4) as usize]
                                    ),
                                    // Removed ads keep their history.
                                    status: if n == 1 && g == 1 { Status::Removed } else { Status::Active },
                                    start: today - Days::new(HISTORY_DAYS - (h % 30)),
                                });
                            }
                            ad_groups.push(AdGroup {
                                id: id_for(platform, seed, "ad_group", &group_path),
                                name: format!(
                                    "Ad group {c}.{g} – {}",
                                    ["Prospecting", "Retargeting", "Lookalike"][g % 3]
                                ),
                                status: Status::Active,
                                ads,
                            });
                        }
                    }
                    campaigns.push(Campaign {
                        id: id_for(platform, seed, "campaign", &campaign_path),
                        name: if performance_max {
                            format!("PMax {c} – All channels")
                        } else {
                            format!("Campaign {c} – {}", ["Brand", "Sale", "Always-on", "Launch"][c % 4])
                        },
                        status,
                        performance_max,
                        ad_groups,
                    });
                }
                accounts.push(Account {
                    platform,
                    id,
                    name: format!("{} {} account {}", platform_label(platform), currency, a + 1),
                    currency,
                    timezone,
                    campaigns,
                });
            }
        }
        World { seed, today, accounts }
    }

    pub fn accounts(&self, platform: Platform) -> impl Iterator<Item = &Account> {
        self.accounts.iter().filter(move |a| a.platform == platform)
    }

    pub fn account(&self, platform: Platform, id: &str) -> Option<&Account> {
        self.accounts(platform).find(|a| a.id == id)
    }

    /// The metrics of one delivering unit (an ad, or a Performance Max campaign) on `date`, at data
    /// version `version`. Days before the unit started or after today have none.
    pub fn metrics(
        &self,
        account: &Account,
        unit_id: &str,
        start: NaiveDate,
        date: NaiveDate,
        version: u64,
    ) -> Metrics {
        if date < start || date > self.today {
            return Metrics::default();
        }
        let h = mix(hash_str(self.seed, unit_id) ^ mix(u64::from(date.num_days_from_ce().unsigned_abs())));
        // About one day in twelve has no delivery at all.
        if h.is_multiple_of(12) {
            return Metrics::default();
        }
        let impressions = (200 + (h >> 8) % 20_000) as i64;
        // Some days get view-through conversions with zero clicks.
        let clicks = if (h >> 20).is_multiple_of(17) { 0 } else { impressions / (15 + ((h >> 24) % 60) as i64) };
        let unit = if zero_decimal(account.currency) { 1_000_000 } else { 10_000 }; // whole yen or cents
        let cpc_units = 20 + ((h >> 32) % 180) as i64; // 0.20–2.00 per click (or 20–200 yen)
        let spend_micros = if clicks > 0 {
            clicks * cpc_units * unit
        } else {
            (impressions / 100) * unit // CPM-style spend without clicks, in whole minor units
        };
        let view_through = if clicks == 0 { 1 + ((h >> 40) % 3) as i64 } else { 0 };
        let mut conversions_micros = (clicks / 25) * 1_000_000 + view_through * 1_000_000;
        if account.platform == Platform::GoogleAds && clicks > 0 && (h >> 44).is_multiple_of(3) {
            conversions_micros += 500_000; // data-driven attribution: a fractional conversion
        }
        // Late-attributed conversions appear on the last days when the data version advances.
        let mut late_conversions_micros = 0;
        if version > 0 && date + Days::new(RESTATED_DAYS) > self.today {
            late_conversions_micros = version as i64 * 1_000_000;
            conversions_micros += late_conversions_micros;
        }
        let price_micros = (4_000 + ((h >> 48) % 6_000) as i64) * unit;
        let conversion_value_micros = conversions_micros / 1_000_000 * price_micros;
        // One click in 40 sends a lead form, worth 5.00 (500 yen) each.
        let leads = clicks / 40;
        Metrics {
            impressions,
            clicks,
            spend_micros,
            conversions_micros,
            conversion_value_micros,
            view_through_conversions: view_through,
            late_conversions_micros,
            price_micros,
            leads,
            lead_value_micros: leads * 500 * unit,
            video_views: impressions / 3,
            likes: clicks / 4,
            comments: clicks / 40,
            shares: clicks / 30,
        }
    }

    /// Every delivering unit of an account: (campaign, ad group, ad) for ads, (campaign, None, None) for
    /// Performance Max campaigns.
    pub fn units<'a>(&'a self, account: &'a Account) -> impl Iterator<Item = Unit<'a>> + 'a {
        account.campaigns.iter().flat_map(|campaign| {
            let ads: Vec<Unit<'a>> = if campaign.performance_max {
                vec![Unit { campaign, ad_group: None, ad: None }]
            } else {
                campaign
                    .ad_groups
                    .iter()
                    .flat_map(|g| g.ads.iter().map(move |ad| Unit { campaign, ad_group: Some(g), ad: Some(ad) }))
                    .collect()
            };
            ads.into_iter()
        })
    }

    /// The metrics of a unit on a day.
    pub fn unit_metrics(&self, account: &Account, unit: &Unit<'_>, date: NaiveDate, version: u64) -> Metrics {
        match unit.ad {
            Some(ad) => self.metrics(account, &ad.id, ad.start, date, version),
            None => self.metrics(account, &unit.campaign.id, self.today - Days::new(HISTORY_DAYS), date, version),
        }
    }

    /// Ground truth: the exact totals of one account on one day (what every mart must reconcile to).
    pub fn truth(&self, account: &Account, date: NaiveDate, version: u64) -> Metrics {
        let mut total = Metrics::default();
        for unit in self.units(account) {
            total.add(&self.unit_metrics(account, &unit, date, version));
        }
        total
    }
}

impl World {
    /// Ground truth of one conversion definition: the exact conversions and conversion value (micros)
    /// a source configured with `options` must load for one account on one day.
    pub fn conversion_truth(
        &self,
        account: &Account,
        date: NaiveDate,
        version: u64,
        options: &mdp_core::SourceOptions,
    ) -> (i64, i64) {
        let mut total = (0, 0);
        for unit in self.units(account) {
            let m = self.unit_metrics(account, &unit, date, version);
            if !m.is_zero() {
                let (count, value) = crate::conversions::definition_truth(options, &m);
                total = (total.0 + count, total.1 + value);
            }
        }
        total
    }
}

/// A delivering unit: an ad in its ad group and campaign, or a campaign with no ads (Performance Max).
#[derive(Debug, Clone, Copy)]
pub struct Unit<'a> {
    pub campaign: &'a Campaign,
    pub ad_group: Option<&'a AdGroup>,
    pub ad: Option<&'a Ad>,
}

fn platform_label(platform: Platform) -> &'static str {
    match platform {
        Platform::GoogleAds => "Google Ads",
        Platform::MetaAds => "Meta",
        Platform::TikTokAds => "TikTok",
        Platform::LinkedInAds => "LinkedIn",
        Platform::Declared(declared) => declared.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::new(7, NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(), Scale::default())
    }

    #[test]
    fn the_same_seed_gives_the_same_world_and_numbers() {
        let (a, b) = (world(), world());
        assert_eq!(a.accounts, b.accounts);
        let account = &a.accounts[0];
        let day = a.today - Days::new(10);
        assert_eq!(a.truth(account, day, 0), b.truth(&b.accounts[0], day, 0));
    }

    #[test]
    fn the_world_has_the_cases_connectors_must_handle() {
        let w = world();
        assert!(w.accounts.iter().any(|a| a.currency == "JPY"), "a zero-decimal currency");
        assert!(w.accounts.iter().flat_map(|a| &a.campaigns).any(|c| c.performance_max), "Performance Max");
        assert!(w.accounts.iter().flat_map(|a| &a.campaigns).any(|c| c.status == Status::Paused));
        let account = &w.accounts[0];
        let days: Vec<Metrics> = (0..120).map(|d| w.truth(account, w.today - Days::new(d), 0)).collect();
        let units: Vec<Metrics> = w
            .units(account)
            .flat_map(|u| (0..120).map(move |d| (u, d)))
            .map(|(u, d)| w.unit_metrics(account, &u, w.today - Days::new(d), 0))
            .collect();
        assert!(units.iter().any(|m| m.is_zero()), "days without delivery");
        assert!(units.iter().any(|m| m.clicks == 0 && m.conversions_micros > 0), "view-through conversions");
        assert!(days.iter().all(|m| m.clicks <= m.impressions));
        for account in w.accounts.iter().filter(|a| a.currency == "JPY") {
            let m = w.truth(account, w.today - Days::new(5), 0);
            assert_eq!(m.spend_micros % 1_000_000, 0, "JPY spend is whole yen");
        }
    }

    #[test]
    fn restatements_change_only_the_last_days_conversions() {
        let w = world();
        let account = &w.accounts[2];
        let old = w.today - Days::new(10);
        assert_eq!(w.truth(account, old, 0), w.truth(account, old, 1));
        let recent = w.today - Days::new(1);
        let (before, after) = (w.truth(account, recent, 0), w.truth(account, recent, 1));
        assert!(after.conversions_micros > before.conversions_micros);
        assert_eq!(after.spend_micros, before.spend_micros);
    }
}
