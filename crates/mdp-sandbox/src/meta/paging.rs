//! Graph API paging: `limit`, and opaque base64url cursors of "offset:query fingerprint", so that a
//! cursor of one query fails on another. An insights cursor also says where the next page's rows start
//! ("offset:fingerprint:day:unit"), so that reading a query page by page costs O(rows), not O(rows²).

use std::collections::HashMap;

use axum::http::HeaderMap;
use axum::response::Response;

use super::{bad_param, invalid_cursor, DEFAULT_LIMIT, MAX_LIMIT};
use crate::json::json_str;
use crate::world::mix;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let digits: Option<Vec<u32>> = text.bytes().map(|c| B64.iter().position(|b| *b == c).map(|p| p as u32)).collect();
    for chunk in digits?.chunks(4) {
        if chunk.len() < 2 {
            return None;
        }
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, d)| n | (d << (18 - 6 * i)));
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

pub fn encode_cursor(offset: usize, fingerprint: u64) -> String {
    encode_cursor_at(offset, fingerprint, None)
}

/// A cursor that also carries the (day, unit) position of the row after `offset`.
pub(super) fn encode_cursor_at(offset: usize, fingerprint: u64, next: Option<(usize, usize)>) -> String {
    let print = fingerprint & 0xFFFF_FFFF;
    match next {
        None => b64_encode(format!("{offset}:{print:x}").as_bytes()),
        Some((day, unit)) => b64_encode(format!("{offset}:{print:x}:{day}:{unit}").as_bytes()),
    }
}

pub fn decode_cursor(cursor: &str, fingerprint: u64) -> Option<usize> {
    decode_cursor_at(cursor, fingerprint).map(|(offset, _)| offset)
}

/// The offset of a cursor of this query, and the position of the row after it when the cursor has one.
pub(super) fn decode_cursor_at(cursor: &str, fingerprint: u64) -> Option<(usize, Option<(usize, usize)>)> {
    let text = String::from_utf8(b64_decode(cursor)?).ok()?;
    let mut parts = text.split(':');
    let offset = parts.next()?.parse().ok()?;
    if parts.next()? != format!("{:x}", fingerprint & 0xFFFF_FFFF) {
        return None;
    }
    let next = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => None,
        (Some(day), Some(unit), None) => Some((day.parse().ok()?, unit.parse().ok()?)),
        _ => return None,
    };
    Some((offset, next))
}

pub(super) fn fingerprint(parts: &[&str]) -> u64 {
    parts.iter().flat_map(|p| p.bytes().chain([0u8])).fold(mix(7), |h, b| mix(h ^ u64::from(b)))
}

/// The first index and the size of the page a request asks for.
pub(super) fn page_window(params: &HashMap<String, String>, print: u64) -> Result<(usize, usize), Response> {
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l.parse::<usize>().map_err(|_| bad_param("Param limit must be a non-negative integer"))?,
    };
    if limit == 0 || limit > MAX_LIMIT {
        return Err(bad_param(&format!("Param limit must be between 1 and {MAX_LIMIT} in this sandbox")));
    }
    let start = match (params.get("after"), params.get("before")) {
        (Some(after), _) => decode_cursor(after, print).ok_or_else(invalid_cursor)? + 1,
        (None, Some(before)) => {
            let b = decode_cursor(before, print).ok_or_else(invalid_cursor)?;
            b.saturating_sub(limit)
        }
        (None, None) => 0,
    };
    Ok((start, limit))
}

/// The page body with Graph paging: `data` holds the page's rendered items, comma-separated, items
/// `start..end`; `more` whether items follow (and where, for queries that resume by position); `next`
/// rebuilt from the request with the new cursor.
#[allow(clippy::too_many_arguments)]
pub(super) fn page_body(
    data: &[u8],
    start: usize,
    end: usize,
    more: bool,
    resume: Option<(usize, usize)>,
    print: u64,
    headers: &HeaderMap,
    path: &str,
    raw_query: Option<&str>,
) -> Vec<u8> {
    if start >= end {
        return br#"{"data":[]}"#.to_vec();
    }
    let mut out = Vec::with_capacity(data.len() + 512);
    out.extend_from_slice(b"{\"data\":[");
    out.extend_from_slice(data);
    out.extend_from_slice(b"],\"paging\":{\"cursors\":{\"before\":");
    json_str(&mut out, &encode_cursor(start, print));
    out.extend_from_slice(b",\"after\":");
    let after = encode_cursor_at(end - 1, print, resume);
    json_str(&mut out, &after);
    out.push(b'}');
    if more {
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("graph.facebook.com");
        let kept: Vec<&str> = raw_query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("after=") && !p.starts_with("before="))
            .collect();
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        out.extend_from_slice(b",\"next\":");
        json_str(&mut out, &format!("http://{host}{path}?{query}after={after}"));
    }
    if start > 0 {
        out.extend_from_slice(b",\"previous\":");
        json_str(&mut out, &format!("http://graph.facebook.com{path}?before={}", encode_cursor(start, print)));
    }
    out.extend_from_slice(b"}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_query() {
        for offset in [0usize, 1, 24, 499, 123_456] {
            let c = encode_cursor(offset, 77);
            assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{c}");
            assert_eq!(decode_cursor(&c, 77), Some(offset));
            assert_eq!(decode_cursor(&c, 78), None, "a cursor of another query is invalid");
        }
        assert_eq!(decode_cursor("not a cursor!", 77), None);
    }
}
