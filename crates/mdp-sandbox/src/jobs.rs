//! What the imitated report-job APIs (Amazon Ads, Pinterest) share: the jobs made, the faults only jobs
//! have (a job the platform fails, a download URL found expired), and the storage that serves their files
//! refusing a request that carries credentials as well as its presigned signature.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// One platform's report jobs, by id.
#[derive(Debug)]
pub struct Reports<J> {
    pub(crate) jobs: Mutex<HashMap<String, J>>,
    created: AtomicU64,
    /// Files served, and the most reports created and not yet downloaded at any time.
    downloaded: AtomicU64,
    most_in_flight: AtomicU64,
    fail_next: AtomicU32,
    expire_next: AtomicU32,
    downloads_with_auth: AtomicU32,
}

impl<J> Default for Reports<J> {
    fn default() -> Self {
        Reports {
            jobs: Mutex::new(HashMap::new()),
            created: AtomicU64::new(0),
            downloaded: AtomicU64::new(0),
            most_in_flight: AtomicU64::new(0),
            fail_next: AtomicU32::new(0),
            expire_next: AtomicU32::new(0),
            downloads_with_auth: AtomicU32::new(0),
        }
    }
}

fn take_one(counter: &AtomicU32) -> bool {
    counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}

impl<J> Reports<J> {
    /// The next `n` reports created fail, with the platform's reason.
    pub fn fail_next(&self, n: u32) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// The next `n` downloads find their URL expired (403), as one fetched after it lapsed.
    pub fn expire_next_urls(&self, n: u32) {
        self.expire_next.store(n, Ordering::SeqCst);
    }

    /// Reports created so far (a duplicate refused is not one).
    pub fn created(&self) -> u64 {
        self.created.load(Ordering::SeqCst)
    }

    /// The most reports that were made and not yet downloaded at one time (a client's concurrency).
    pub fn most_in_flight(&self) -> u64 {
        self.most_in_flight.load(Ordering::SeqCst)
    }

    /// Downloads refused because they carried an `Authorization` header.
    pub fn downloads_with_auth(&self) -> u32 {
        self.downloads_with_auth.load(Ordering::SeqCst)
    }

    /// A new job: its number (1, 2, …) and whether it is one of those to fail.
    pub(crate) fn create(&self) -> (u64, bool) {
        let number = self.created.fetch_add(1, Ordering::SeqCst) + 1;
        let in_flight = number.saturating_sub(self.downloaded.load(Ordering::SeqCst));
        self.most_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        (number, take_one(&self.fail_next))
    }

    /// The storage's refusal of a download, if it refuses: credentials sent beside the signature (400),
    /// or a URL whose time ran out (403).
    pub(crate) fn refuse_download(&self, headers: &HeaderMap) -> Option<Response> {
        if headers.contains_key("authorization") {
            self.downloads_with_auth.fetch_add(1, Ordering::SeqCst);
            return Some(storage_error(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query \
                 string parameter or the Authorization header should be specified",
            ));
        }
        take_one(&self.expire_next).then(|| storage_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired"))
    }
}

/// A report job of an imitated platform: the account (or profile) it reports on.
pub trait ReportJob: Clone {
    fn account(&self) -> &str;
}

impl<J: ReportJob> Reports<J> {
    /// The job whose file `id` names, with its account of `platform`'s in `world`, unless the storage
    /// refuses the download (`not_found`: the storage's code and message for a file it does not hold).
    pub(crate) fn to_download<'w>(
        &self,
        headers: &HeaderMap,
        id: &str,
        not_found: (&str, &str),
        world: &'w crate::World,
        platform: mdp_core::Platform,
    ) -> Result<(J, &'w crate::world::Account), Response> {
        if let Some(refusal) = self.refuse_download(headers) {
            return Err(refusal);
        }
        let missing = || storage_error(StatusCode::NOT_FOUND, not_found.0, not_found.1);
        let job = self.jobs.lock().expect("reports lock").get(id).cloned().ok_or_else(missing)?;
        let account = world.account(platform, job.account()).ok_or_else(missing)?;
        self.downloaded.fetch_add(1, Ordering::SeqCst);
        Ok((job, account))
    }
}

/// S3's XML error.
pub(crate) fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [("content-type", "application/xml")], xml).into_response()
}
