//! Finds where a key path (`sources[1].credentials.access_token`) is written in a block-style YAML file.
//!
//! serde_yaml locates its own errors, but problems found after parsing (duplicate names, unknown
//! credentials, ...) only know the key path. A small indentation-aware scan recovers the line: it handles
//! block mappings and sequences (including `- key: value` items and sequences at their key's indentation)
//! and skips comments and block scalars. Flow collections (`{ ... }`, `[ ... ]`) are not entered: a path
//! inside one resolves to the key that holds it.

/// A position in the file, 1-based, counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Every key and sequence item of a document, with its path and position, in file order.
#[derive(Debug)]
pub struct Outline {
    entries: Vec<(String, Position)>,
}

/// One open mapping key or sequence item while scanning.
#[derive(Debug)]
struct Frame {
    indent: usize,
    segment: Segment,
}

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

impl Outline {
    pub fn new(text: &str) -> Outline {
        let mut entries = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        // While inside a block scalar (`key: |`), lines indented deeper than this are its content.
        let mut block_scalar_indent: Option<usize> = None;
        for (line_index, line) in text.lines().enumerate() {
            let content = line.trim_start_matches(' ');
            let mut indent = line.len() - content.len();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            if let Some(scalar_indent) = block_scalar_indent {
                if indent > scalar_indent {
                    continue;
                }
                block_scalar_indent = None;
            }
            if content.starts_with("---") || content.starts_with("...") {
                stack.clear();
                continue;
            }
            let mut rest = content;
            if rest == "-" || rest.starts_with("- ") {
                // A sequence item closes everything deeper, and the previous item at this indentation.
                stack.retain(|frame| frame.indent <= indent);
                let index = match stack.last() {
                    Some(Frame { indent: previous_indent, segment: Segment::Index(previous) })
                        if *previous_indent == indent =>
                    {
                        let next = previous + 1;
                        stack.pop();
                        next
                    }
                    _ => 0,
                };
                stack.push(Frame { indent, segment: Segment::Index(index) });
                entries.push((path_of(&stack), Position { line: line_index + 1, column: column_of(line, indent) }));
                // The item's first key sits on the dash's line, indented past the dash.
                let after_dash = rest[1..].trim_start_matches(' ');
                indent += rest.len() - after_dash.len();
                rest = after_dash;
            }
            let Some((key, value)) = split_key(rest) else {
                continue; // a scalar item, or the continuation of a flow collection or plain scalar
            };
            stack.retain(|frame| frame.indent < indent);
            stack.push(Frame { indent, segment: Segment::Key(key.to_owned()) });
            entries.push((path_of(&stack), Position { line: line_index + 1, column: column_of(line, indent) }));
            if value.starts_with('|') || value.starts_with('>') {
                block_scalar_indent = Some(indent);
            }
        }
        Outline { entries }
    }

    /// Every key and item, with its path and position, in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Position)> {
        self.entries.iter().map(|(path, position)| (path.as_str(), *position))
    }

    /// Where `path` is written; when it is not (a missing key, a path inside a flow collection), where its
    /// closest written ancestor is; `None` only when not even the first segment is in the file.
    pub fn locate(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(position) = self.find(path) {
                return Some(position);
            }
            path = parent_path(path)?;
        }
    }

    /// Where exactly `path` is written, if it is.
    pub fn find(&self, path: &str) -> Option<Position> {
        self.entries.iter().find(|(entry_path, _)| entry_path == path).map(|(_, position)| *position)
    }

    /// The path of the last key or item that starts on `line` or before it, e.g. for an error inside a value.
    pub fn path_at_line(&self, line: usize) -> Option<&str> {
        self.entries.iter().take_while(|(_, position)| position.line <= line).last().map(|(path, _)| path.as_str())
    }
}

/// `sources[1].credentials`: the same format serde_yaml uses in its errors.
fn path_of(stack: &[Frame]) -> String {
    let mut path = String::new();
    for frame in stack {
        match &frame.segment {
            Segment::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Index(index) => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// `a.b[2]` → `a.b`, `a.b` → `a`, `a` → `None`.
fn parent_path(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

/// Splits `key: value` (or `key:`) into the key, unquoted, and the value with its comment.
fn split_key(content: &str) -> Option<(&str, &str)> {
    if let Some(quote) = content.chars().next().filter(|first| *first == '"' || *first == '\'') {
        let closing = content[1..].find(quote)? + 1;
        let after = content[closing + 1..].strip_prefix(':')?;
        return (after.is_empty() || after.starts_with(' ')).then(|| (&content[1..closing], after.trim_start()));
    }
    if content.starts_with(['#', '{', '[', '&', '*', '!', '|', '>']) {
        return None;
    }
    let colon = content.find(": ").or_else(|| content.strip_suffix(':').map(str::len))?;
    let key = &content[..colon];
    if key.contains(" #") {
        return None;
    }
    Some((key.trim_end(), content[colon + 1..].trim_start()))
}

fn column_of(line: &str, byte_offset: usize) -> usize {
    line[..byte_offset].chars().count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENT: &str = "\
# a comment: not a key
name: demo
warehouse:
  default: local
  targets:
    local:
      type: duckdb
    prod: { type: postgres, url: x }
sources:
- name: google_ads
  platform: google_ads
  accounts:
    - \"1\"
    - \"2\"
  credentials:
    access_token: { env: TOKEN }
-   platform: meta_ads
    notes: |
      looks: like a key
    lookback_days: 7
\"quoted key\": 1
";

    fn check(path: &str, expected: Option<(usize, usize)>) {
        let outline = Outline::new(DOCUMENT);
        let found = outline.locate(path).map(|position| (position.line, position.column));
        assert_eq!(found, expected, "{path}\noutline: {outline:#?}");
    }

    #[test]
    fn locates_keys_items_and_their_closest_written_ancestor() {
        check("name", Some((2, 1)));
        check("warehouse.default", Some((4, 3)));
        check("warehouse.targets.local.type", Some((7, 7)));
        check("warehouse.targets.prod.url", Some((8, 5)));
        check("sources", Some((9, 1)));
        check("sources[0]", Some((10, 1)));
        check("sources[0].name", Some((10, 3)));
        check("sources[0].accounts[1]", Some((14, 5)));
        check("sources[0].credentials.access_token", Some((16, 5)));
        check("sources[0].credentials.access_token.env", Some((16, 5)));
        check("sources[1]", Some((17, 1)));
        check("sources[1].platform", Some((17, 5)));
        check("sources[1].name", Some((17, 1)));
        check("sources[1].lookback_days", Some((20, 5)));
        check("sources[1].looks", Some((17, 1)));
        check("quoted key", Some((21, 1)));
        check("reporting.currency", None);
    }

    #[test]
    fn finds_the_path_at_a_line() {
        let outline = Outline::new(DOCUMENT);
        assert_eq!(outline.path_at_line(8), Some("warehouse.targets.prod"));
        assert_eq!(outline.path_at_line(16), Some("sources[0].credentials.access_token"));
        assert_eq!(outline.path_at_line(19), Some("sources[1].notes"));
        assert_eq!(outline.path_at_line(1), None);
    }

    #[test]
    fn indented_sequences_and_nested_items() {
        let outline = Outline::new("sources:\n  - name: a\n    accounts: [x]\n  - name: b\nafter: 1\n");
        assert_eq!(outline.locate("sources[1].name"), Some(Position { line: 4, column: 5 }));
        assert_eq!(outline.locate("sources[0].accounts[0]"), Some(Position { line: 3, column: 5 }));
        assert_eq!(outline.locate("after"), Some(Position { line: 5, column: 1 }));
    }
}
