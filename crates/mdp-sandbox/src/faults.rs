//! Injectable faults: what real platform APIs do on a bad day.
//!
//! Faults are queued (per platform or for any) and consumed by the next matching requests, so a test
//! says exactly which request fails and how. Each platform module renders a fault in its own API's
//! shape (TikTok: HTTP 200 with a non-zero `code`; Google: a `google.rpc.Status`; …).

use std::collections::VecDeque;
use std::sync::Mutex;

use mdp_core::Platform;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// The platform's rate-limit answer (HTTP 429 with `Retry-After`, or its in-body equivalent).
    RateLimit { retry_after_secs: u64 },
    /// HTTP 500/503 with the platform's error envelope.
    ServerError,
    /// Answer correctly but only after a delay.
    Slow { millis: u64 },
    /// Answer 200 with the body cut in half (a dropped connection mid-body).
    TruncatedJson,
    /// The page cursor/token sent is rejected as expired or invalid.
    ExpiredCursor,
    /// The access token is rejected (expired or revoked).
    Unauthorized,
}

/// What an injected fault makes a platform refuse; each platform answers it in its own envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The access token (expired or revoked).
    Unauthorized,
    RateLimit {
        retry_after_secs: u64,
    },
    ServerError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// `None`: the next request to any platform.
    pub platform: Option<Platform>,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many consecutive matching requests get it.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// The queue of pending faults.
#[derive(Debug, Default)]
pub struct Faults {
    queue: Mutex<VecDeque<Fault>>,
    injected: Mutex<Vec<(Platform, FaultKind)>>,
}

impl Faults {
    pub fn push(&self, fault: Fault) {
        self.queue.lock().expect("faults lock").push_back(fault);
    }

    /// The fault the next request to `platform` must suffer, if any. `ExpiredCursor` only applies to
    /// requests that carry a cursor, so `has_cursor` says whether this one does.
    pub fn take(&self, platform: Platform, has_cursor: bool) -> Option<FaultKind> {
        let mut queue = self.queue.lock().expect("faults lock");
        let index = queue.iter().position(|f| {
            f.platform.is_none_or(|p| p == platform) && (has_cursor || f.kind != FaultKind::ExpiredCursor)
        })?;
        let fault = &mut queue[index];
        let kind = fault.kind;
        fault.count = fault.count.saturating_sub(1);
        if fault.count == 0 {
            queue.remove(index);
        }
        self.injected.lock().expect("faults lock").push((platform, kind));
        Some(kind)
    }

    /// The fault the next request to `platform` suffers, applied: a refusal is the answer `refuse`
    /// renders in the platform's own envelope (`Err`), a slow answer is waited out here, and a fault that
    /// shapes the answer (a cut body) is handed back.
    pub(crate) async fn apply(
        &self,
        platform: Platform,
        refuse: impl Fn(Refusal) -> axum::response::Response,
    ) -> Result<Option<FaultKind>, axum::response::Response> {
        match self.take(platform, false) {
            Some(FaultKind::Unauthorized) => Err(refuse(Refusal::Unauthorized)),
            Some(FaultKind::RateLimit { retry_after_secs }) => Err(refuse(Refusal::RateLimit { retry_after_secs })),
            Some(FaultKind::ServerError) => Err(refuse(Refusal::ServerError)),
            Some(FaultKind::Slow { millis }) => {
                tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// Faults served so far, for tests.
    pub fn injected(&self) -> Vec<(Platform, FaultKind)> {
        self.injected.lock().expect("faults lock").clone()
    }

    pub fn pending(&self) -> usize {
        self.queue.lock().expect("faults lock").len()
    }
}

/// Cut a body in half, as a connection dropped mid-response would.
pub fn truncate(body: &str) -> String {
    let mut end = body.len() / 2;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_string()
}
