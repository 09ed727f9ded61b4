//! Writing JSON bodies straight into a buffer, for the large report answers of every platform.

/// Write `s` as a JSON string, with serde_json's escaping.
pub(crate) fn json_str(buf: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *buf, s).expect("writing JSON to a Vec");
}

/// Write `"key":`.
pub(crate) fn json_key(buf: &mut Vec<u8>, key: &str) {
    json_str(buf, key);
    buf.push(b':');
}

/// Write an integer as a JSON number.
pub(crate) fn json_int(buf: &mut Vec<u8>, n: i64) {
    use std::io::Write;
    write!(buf, "{n}").expect("writing to a Vec");
}

/// A body written with the helpers above (always UTF-8).
pub(crate) fn into_text(buf: Vec<u8>) -> String {
    String::from_utf8(buf).expect("JSON bodies are UTF-8")
}
