//! Asynchronous report jobs (`job:` in a spec): create the report, poll its status until it is done,
//! download its file (fresh URL again when one expired), decompress and read it as the stream's records.
//! Every request goes through the shared driver (retries, token renewal, error rules); the download
//! carries no credential unless the spec says so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mdp_spec::model::{Decoder, ErrorAction, ErrorRule, JobDef};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::api::{value_at, DeclaredApi, Read, Reading};
use super::files;
use super::row::Record;
use super::{DeclaredSource, StreamPlan};
use crate::error::SourceError;
use crate::http::{ReportApi, ROWS_PER_SEND};
use crate::source::{emit, ReadContext, Sink};

/// Times an expired (or vanished) download URL is asked for again before the run gives up.
const FRESH_URLS: u32 = 2;

/// The longest wait between two polls.
const MAX_POLL_WAIT: Duration = Duration::from_secs(60);

/// A stream's report job, ready to run.
#[derive(Debug)]
pub(crate) struct JobPlan {
    def: JobDef,
    /// The API the create request is sent through: the spec's, where the duplicate refusal is an
    /// answer to read (the job it names), not an error.
    create_api: Arc<DeclaredApi>,
}

impl JobPlan {
    pub(crate) fn new(def: &JobDef, api: &Arc<DeclaredApi>) -> JobPlan {
        let create_api = match &def.duplicate {
            None => api.clone(),
            Some(duplicate) => {
                let mut rules = vec![ErrorRule {
                    status: duplicate.status.clone(),
                    body_path: None,
                    equals: Vec::new(),
                    not_equals: Vec::new(),
                    contains: None,
                    action: ErrorAction::Success,
                    message_path: None,
                    wait_seconds: None,
                    wait_path: None,
                }];
                rules.extend(api.rules.iter().cloned());
                Arc::new(DeclaredApi {
                    endpoint: api.endpoint.clone(),
                    rules,
                    reset_headers: api.reset_headers.clone(),
                })
            }
        };
        JobPlan { def: def.clone(), create_api }
    }
}

/// The id after `after` in `text` (up to the next blank or quote).
fn id_after(text: &str, after: &str) -> Option<String> {
    let rest = &text[text.find(after)? + after.len()..];
    let id: String = rest.trim_start().chars().take_while(|c| !c.is_whitespace() && !"\"',;".contains(*c)).collect();
    (!id.is_empty()).then_some(id)
}

/// A done report's file, as downloaded: its job's id and the bytes (compressed as the spec says).
pub(crate) struct ReportFile {
    id: String,
    body: Vec<u8>,
    /// The status request, whose reading of a page reads the file.
    poll: crate::http::HttpRequest,
}

impl JobPlan {
    /// How many of an account's reports may be in flight at once (`job.concurrency`).
    pub(crate) fn concurrency(&self) -> usize {
        self.def.concurrency.max(1) as usize
    }
}

impl DeclaredSource {
    /// Run the report job of one window (`context`) to its end: create it, poll it until it is done, and
    /// download its file. `None`: the job is done without a file (no rows).
    pub(super) async fn fetch_report(
        &self,
        plan: &StreamPlan,
        job: &JobPlan,
        context: &Value,
        ctx: &ReadContext,
    ) -> Result<Option<ReportFile>, SourceError> {
        let def = &job.def;
        let key = format!("{}.job", plan.key);
        let create = self.request(&format!("{}.request", plan.key), &plan.request, context)?;
        let created = ctx.http.json(job.create_api.as_ref(), &create).await?;
        let id = match value_at(&created, &def.id) {
            Some(id) => id,
            None => def
                .duplicate
                .as_ref()
                .and_then(|duplicate| {
                    value_at(&created, &duplicate.path).and_then(|text| id_after(&text, &duplicate.after))
                })
                .ok_or_else(|| {
                    let shown: String = created.to_string().chars().take(300).collect();
                    self.malformed(format!(
                        "the report's create answer has no job id at `{}` ({key}.id): {shown}",
                        def.id
                    ))
                })?,
        };
        let mut context = context.clone();
        context["job"] = json!({ "id": id });
        let poll = self.request(&format!("{key}.poll"), &def.poll, &context)?;

        let started = Instant::now();
        let timeout = Duration::from_secs(def.timeout_minutes.saturating_mul(60));
        // Waits never exceed the driver's longest retry delay (tests run jobs in milliseconds).
        let cap = MAX_POLL_WAIT.min(ctx.http.policy().max_delay);
        let first_wait = Duration::from_secs(def.poll_seconds).min(cap);
        // Polled at once (a small report is often ready), then after `poll_seconds`, each wait half again
        // as long as the one before.
        let mut wait = Duration::ZERO;
        let mut fresh_urls = 0;
        let mut polls = 0u32;
        let body = loop {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            polls += 1;
            let answer = ctx.http.json(self.api.as_ref(), &poll).await?;
            let status = value_at(&answer, &def.status).ok_or_else(|| {
                self.malformed(format!("report job {id}: the status answer has no `{}` ({key}.status)", def.status))
            })?;
            if def.running.contains(&status) {
                if started.elapsed() >= timeout {
                    return Err(SourceError::Transport {
                        platform: self.platform(),
                        attempts: polls,
                        message: format!(
                            "report job {id} was still {status} after {} minutes ({key}.timeout_minutes); the next \
                             run asks again",
                            def.timeout_minutes
                        ),
                    });
                }
                wait = if wait.is_zero() { first_wait } else { (wait + wait / 2).min(cap) };
                continue;
            }
            if def.failed.contains(&status) {
                let reason = def.message.as_deref().and_then(|path| value_at(&answer, path));
                return Err(SourceError::Platform {
                    platform: self.platform(),
                    code: status,
                    message: format!(
                        "report job {id} failed: {}",
                        reason.unwrap_or_else(|| "the platform gave no reason".into())
                    ),
                });
            }
            if !def.done.contains(&status) {
                return Err(self.malformed(format!(
                    "report job {id} has status {status}, which the spec names in none of running ({}), done ({}) \
                     and failed ({}) ({key})",
                    def.running.join(", "),
                    def.done.join(", "),
                    def.failed.join(", ")
                )));
            }
            // Done: a job without a file has no rows.
            let Some(url) = value_at(&answer, &def.url) else { return Ok(None) };
            let (status, file) = ctx.http.download(&self.api.endpoint, &url, def.download_auth).await?;
            if status.is_success() {
                break file;
            }
            // A presigned URL expires (Amazon: an hour, Microsoft: five minutes): ask for a fresh one.
            if matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::GONE)
                && fresh_urls < FRESH_URLS
            {
                fresh_urls += 1;
                wait = Duration::ZERO;
                continue;
            }
            return Err(SourceError::Platform {
                platform: self.platform(),
                code: status.as_u16().to_string(),
                message: format!("the file of report job {id} could not be downloaded (HTTP {status})"),
            });
        };
        Ok(Some(ReportFile { id, body, poll }))
    }

    /// Decompress and decode a report's file and send its records to `out`, mapped.
    #[allow(clippy::too_many_arguments, reason = "a window's read, as read_pages takes it, plus the file")]
    pub(super) async fn read_report_file<T: Send>(
        &self,
        plan: &StreamPlan,
        job: &JobPlan,
        file: ReportFile,
        days: u32,
        ctx: &ReadContext,
        out: &Sink<T>,
        map: impl Fn(&Record<'_>, String) -> Result<T, SourceError>,
    ) -> Result<(), SourceError> {
        let ReportFile { id, body, poll } = file;
        let compression = job.def.compression;
        let bytes = body.len();
        // A CSV file is turned into JSON records (its rows keyed by its column row), read as that array.
        let (csv, reading) = match plan.reading.decoder {
            Decoder::Csv => {
                let json = Reading {
                    paginator: plan.reading.paginator.clone(),
                    decoder: Decoder::Json,
                    records: String::new(),
                };
                (Some(plan.csv.clone().unwrap_or_default()), Arc::new(json))
            }
            Decoder::Json | Decoder::Jsonl => (None, plan.reading.clone()),
        };
        let text = tokio::task::spawn_blocking(move || {
            let text = files::decompress(body, compression)?;
            match csv {
                Some(layout) => files::csv_as_json(&text, &layout),
                None => Ok(text),
            }
        })
        .await
        .map_err(|e| self.malformed(format!("internal: decoding a report file: {e}")))?
        .map_err(|e| self.malformed(format!("the file of report job {id} ({bytes} bytes): {e}")))?;
        let read = Read { request: poll, reading };
        let page = self
            .api
            .parse_page(&read, None, &text)
            .map_err(|e| self.malformed(format!("the file of report job {id}: {e}")))?;
        let mut records = Vec::with_capacity(ROWS_PER_SEND);
        for item in page.rows {
            self.map_item(plan, item, days, &map, &mut records)?;
            if records.len() >= ROWS_PER_SEND {
                emit(out, ctx, std::mem::take(&mut records)).await?;
            }
        }
        if !records.is_empty() {
            emit(out, ctx, records).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_refusal_names_the_job_already_made() {
        let detail = "The Request is a duplicate of : 0c9b5d2e-1f2a-4b3c-9d8e-7f6a5b4c3d2e";
        assert_eq!(id_after(detail, "duplicate of : ").as_deref(), Some("0c9b5d2e-1f2a-4b3c-9d8e-7f6a5b4c3d2e"));
        assert_eq!(id_after("duplicate of : \"abc\", retry", "duplicate of : ").as_deref(), None);
        assert_eq!(id_after("duplicate of :    abc.", "duplicate of :").as_deref(), Some("abc."));
        assert_eq!(id_after("another error", "duplicate of : "), None);
    }
}
