//! Optional report fields degrade; required ones fail clearly.
//!
//! Platforms rename and retire metrics (Google's `video_views` became `video_trueview_views`). A field
//! the connector can do without ([`mdp_core::optional_fields`]: video views, engagement, payload-only
//! extras) that the API refuses is dropped from the source's requests for the rest of the run, with
//! one warning naming it and `skip_fields`, and its column is NULL in the rows read without it. A
//! refused field that is not optional (spend, impressions, clicks, the configured conversion fields)
//! stays an error, which then names the field.

use std::sync::Mutex;

use mdp_core::Platform;

use crate::error::SourceError;
use crate::record::PerformanceRecord;
use crate::source::SourceSettings;

/// The optional fields of one source: skipped by configuration or dropped after a refusal.
#[derive(Debug)]
pub struct OptionalFields {
    source_name: String,
    platform: Platform,
    /// Fields the configuration makes required although the platform lists them as optional (e.g. a
    /// LinkedIn conversion metric).
    required: Vec<String>,
    skipped: Mutex<Vec<String>>,
    /// Whether `skipped` holds anything: `clear` runs per record and must not lock when it is empty.
    any: std::sync::atomic::AtomicBool,
    /// Refusals of fields already dropped (in-flight requests of other accounts).
    repeats: std::sync::atomic::AtomicU32,
}

/// How many refusals of already-dropped fields are asked again before they count as errors.
const MAX_REPEATED_REFUSALS: u32 = 64;

impl OptionalFields {
    pub fn new(settings: &SourceSettings, required: &[&str]) -> OptionalFields {
        OptionalFields {
            source_name: settings.name.clone(),
            platform: settings.platform,
            required: required.iter().map(|f| f.to_string()).collect(),
            skipped: Mutex::new(settings.options.skip_fields().to_vec()),
            any: (!settings.options.skip_fields().is_empty()).into(),
            repeats: Default::default(),
        }
    }

    fn is_optional(&self, field: &str) -> bool {
        mdp_core::optional_fields(self.platform).contains(&field) && !self.required.iter().any(|r| r == field)
    }

    /// Whether `field` is still requested.
    pub fn wanted(&self, field: &str) -> bool {
        !self.skipped.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|s| s == field)
    }

    /// `fields` without the skipped ones.
    pub fn requested<'a>(&self, fields: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        fields.into_iter().filter(|f| self.wanted(f)).collect()
    }

    /// After `error`: `true` when it is the platform refusing an optional field, which is then no
    /// longer requested (the caller asks again); a refused required field becomes an error that says so.
    pub fn drop_refused(&self, error: SourceError) -> Result<(), SourceError> {
        let SourceError::Platform { message, .. } = &error else { return Err(error) };
        let Some(field) = refused_field(message) else { return Err(error) };
        if !self.is_optional(&field) {
            let SourceError::Platform { platform, code, message } = error else { unreachable!() };
            return Err(SourceError::Platform {
                platform,
                code,
                message: format!(
                    "{message} — `{field}` is a field mdp needs (spend, impressions, clicks and the configured \
                     conversions are); check `api_version` and the conversion options"
                ),
            });
        }
        let mut skipped = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        if skipped.contains(&field) {
            // A request sent before another one dropped the field (accounts are read side by side): ask
            // again. A platform that keeps naming a field no longer sent is not ours to fix.
            let repeats = self.repeats.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return if repeats < MAX_REPEATED_REFUSALS { Ok(()) } else { Err(error) };
        }
        tracing::warn!(
            source = %self.source_name,
            field = %field,
            "{} refused the optional field `{field}` ({message}); it is no longer requested and its column is \
             NULL in the rows read from now on. Add it to `skip_fields` under the source's options to stop \
             asking for it.",
            self.platform
        );
        skipped.push(field);
        self.any.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Clear the typed columns fed by skipped fields (NULL: not read, unlike a zero).
    pub fn clear(&self, record: &mut PerformanceRecord) {
        if !self.any.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let skipped = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        for field in skipped.iter() {
            match column(field) {
                Some(Column::VideoViews) => record.video_views = None,
                Some(Column::Likes) => record.likes = None,
                Some(Column::Comments) => record.comments = None,
                Some(Column::Shares) => record.shares = None,
                None => {}
            }
        }
    }
}

enum Column {
    VideoViews,
    Likes,
    Comments,
    Shares,
}

/// The typed column an optional field feeds, on any platform.
fn column(field: &str) -> Option<Column> {
    Some(match field {
        "metrics.video_trueview_views" | "metrics.video_views" | "video_play_actions" | "videoViews" => {
            Column::VideoViews
        }
        "likes" => Column::Likes,
        "comments" => Column::Comments,
        "shares" => Column::Shares,
        _ => return None,
    })
}

/// The field a platform's "unknown field" error names: Google's `unrecognized field 'metrics.x'`,
/// Meta's `Tried accessing nonexisting field (x)`, TikTok's `metrics: x is not a valid metric`,
/// LinkedIn's `fields: x is not a valid field`.
pub fn refused_field(message: &str) -> Option<String> {
    let between = |start: &str, end: &str| -> Option<String> {
        let rest = &message[message.find(start)? + start.len()..];
        Some(rest[..rest.find(end)?].trim().to_string())
    };
    between("unrecognized field '", "'")
        .or_else(|| between("nonexisting field (", ")"))
        .or_else(|| between("metrics: ", " is not a valid metric"))
        .or_else(|| between("fields: ", " is not a valid field"))
        .filter(|field| !field.is_empty() && !field.contains(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platforms_unknown_field_error_names_the_field() {
        let cases = [
            ("Error in query: unrecognized field 'metrics.video_views'.", "metrics.video_views"),
            (
                "(#100) Tried accessing nonexisting field (inline_post_engagement) on node type (AdsInsights)",
                "inline_post_engagement",
            ),
            ("metrics: likes is not a valid metric", "likes"),
            ("fields: videoViews is not a valid field of AdAnalytics", "videoViews"),
        ];
        for (message, field) in cases {
            assert_eq!(refused_field(message).as_deref(), Some(field), "{message}");
        }
        assert_eq!(refused_field("Invalid OAuth access token"), None);
    }

    fn settings(platform: Platform) -> SourceSettings {
        SourceSettings {
            name: "src".into(),
            platform,
            base_url: "http://localhost".into(),
            api_version: "v1".into(),
            accounts: Vec::new(),
            credentials: Default::default(),
            token_url: None,
            options: mdp_core::SourceOptions::defaults(platform),
        }
    }

    fn refused(message: &str) -> SourceError {
        SourceError::Platform { platform: Platform::TikTokAds, code: "40002".into(), message: message.into() }
    }

    #[test]
    fn a_refused_optional_field_is_dropped_once_and_its_column_is_null() {
        let fields = OptionalFields::new(&settings(Platform::TikTokAds), &["conversion"]);
        assert_eq!(fields.requested(["spend", "likes", "shares"]), ["spend", "likes", "shares"]);
        fields.drop_refused(refused("metrics: likes is not a valid metric")).unwrap();
        assert_eq!(fields.requested(["spend", "likes", "shares"]), ["spend", "shares"]);
        let mut record = PerformanceRecord { likes: Some(0), shares: Some(3), ..Default::default() };
        fields.clear(&mut record);
        assert_eq!((record.likes, record.shares), (None, Some(3)), "not read is NULL, not zero");
        // The same refusal again (a request sent before the drop) is asked again, a bounded number of times.
        let again =
            (0..100).filter(|_| fields.drop_refused(refused("metrics: likes is not a valid metric")).is_ok()).count();
        assert_eq!(again, MAX_REPEATED_REFUSALS as usize);
        // A required field stays an error, which says the field is needed.
        let error = fields.drop_refused(refused("metrics: spend is not a valid metric")).unwrap_err().to_string();
        assert!(error.contains("`spend` is a field mdp needs"), "{error}");
        let error = fields.drop_refused(refused("metrics: conversion is not a valid metric")).unwrap_err();
        assert!(
            error.to_string().contains("`conversion` is a field mdp needs"),
            "a configured conversion metric: {error}"
        );
    }
}
