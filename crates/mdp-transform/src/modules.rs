//! dbt's `modules` context: the parts of Python's `re` and `datetime` that dbt packages call
//! (`modules.re.sub(…)` in dbt_utils' `slugify`, `modules.datetime.datetime.now().strftime(…)` in
//! its logging helpers).
//!
//! `re` runs on Rust's `regex`: Python patterns without look-around or backreferences behave the
//! same; others fail with the regex error. `sub`'s replacement takes Python's `\1` / `\g<name>`.

use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime, Timelike};
use minijinja::value::{from_args, Kwargs, Object};
use minijinja::{Error, ErrorKind, State, Value};

/// `modules`.
#[derive(Debug)]
pub struct Modules;

impl Object for Modules {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "re" => Some(Value::from_object(Re)),
            "datetime" => Some(Value::from_object(DatetimeModule)),
            _ => None,
        }
    }
}

const IGNORECASE: i64 = 2;
const MULTILINE: i64 = 8;
const DOTALL: i64 = 16;
const VERBOSE: i64 = 64;

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

fn compile(pattern: &str, flags: i64) -> Result<regex::Regex, Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(flags & IGNORECASE != 0)
        .multi_line(flags & MULTILINE != 0)
        .dot_matches_new_line(flags & DOTALL != 0)
        .ignore_whitespace(flags & VERBOSE != 0)
        .build()
        .map_err(|e| invalid(format!("modules.re: pattern {pattern:?}: {e}")))
}

/// `modules.re`.
#[derive(Debug)]
struct Re;

impl Object for Re {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from(match key.as_str()? {
            "IGNORECASE" | "I" => IGNORECASE,
            "MULTILINE" | "M" => MULTILINE,
            "DOTALL" | "S" => DOTALL,
            "VERBOSE" | "X" => VERBOSE,
            _ => return None,
        }))
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        if method == "escape" {
            let (text,): (String,) = from_args(args)?;
            return Ok(Value::from(regex::escape(&text)));
        }
        if method == "compile" {
            let (pattern, flags): (String, Option<i64>) = from_args(args)?;
            let flags = flags.unwrap_or(0);
            return Ok(Value::from_object(Pattern { regex: compile(&pattern, flags)? }));
        }
        // The module functions take the pattern first, then what the pattern's method takes.
        let (pattern, rest) = args.split_first().ok_or_else(|| invalid(format!("modules.re.{method}: no pattern")))?;
        let flags = kwarg_flags(rest)?;
        let pattern = match pattern.downcast_object_ref::<Pattern>() {
            Some(p) => p.regex.clone(),
            None => compile(&pattern.to_string(), flags)?,
        };
        pattern_method(&pattern, method, rest)
    }
}

/// `flags=` among the keyword arguments (positional flags are read by each method).
fn kwarg_flags(args: &[Value]) -> Result<i64, Error> {
    match args.last().filter(|a| a.is_kwargs()) {
        Some(kwargs) => Ok(kwargs.get_attr("flags").ok().and_then(|f| i64::try_from(f).ok()).unwrap_or(0)),
        None => Ok(0),
    }
}

/// A compiled pattern (`modules.re.compile(…)`).
#[derive(Debug)]
struct Pattern {
    regex: regex::Regex,
}

impl Object for Pattern {
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        pattern_method(&self.regex, method, args)
    }
}

fn pattern_method(regex: &regex::Regex, method: &str, args: &[Value]) -> Result<Value, Error> {
    match method {
        "match" | "search" | "fullmatch" => {
            let (text, _flags, _kwargs): (String, Option<i64>, Option<Kwargs>) = from_args(args)?;
            let found = regex.captures(&text).filter(|c| {
                let whole = c.get(0).expect("group 0");
                match method {
                    "match" => whole.start() == 0,
                    "fullmatch" => whole.start() == 0 && whole.end() == text.len(),
                    _ => true,
                }
            });
            Ok(match found {
                Some(captures) => Value::from_object(Match::new(regex, &captures)),
                None => Value::from(()),
            })
        }
        "sub" => {
            let (replacement, text, count, _kwargs): (String, String, Option<usize>, Option<Kwargs>) = from_args(args)?;
            let replacement = python_replacement(&replacement);
            Ok(Value::from(regex.replacen(&text, count.unwrap_or(0), replacement.as_str()).into_owned()))
        }
        "findall" => {
            let (text, _flags, _kwargs): (String, Option<i64>, Option<Kwargs>) = from_args(args)?;
            let groups = regex.captures_len() - 1;
            Ok(Value::from_iter(regex.captures_iter(&text).map(|c| {
                let text = |i: usize| Value::from(c.get(i).map_or("", |m| m.as_str()).to_string());
                match groups {
                    0 => text(0),
                    1 => text(1),
                    n => Value::from_iter((1..=n).map(text)),
                }
            })))
        }
        "split" => {
            let (text, maxsplit, _kwargs): (String, Option<usize>, Option<Kwargs>) = from_args(args)?;
            let parts: Vec<Value> = match maxsplit.filter(|m| *m > 0) {
                Some(m) => regex.splitn(&text, m + 1).map(|s| Value::from(s.to_string())).collect(),
                None => regex.split(&text).map(|s| Value::from(s.to_string())).collect(),
            };
            Ok(Value::from(parts))
        }
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

/// Python's `\1`, `\g<1>`, `\g<name>` in a replacement, as `regex`'s `${1}` / `${name}`; a literal `$`
/// escaped.
fn python_replacement(replacement: &str) -> String {
    let mut out = String::with_capacity(replacement.len());
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut group = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        group.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{group}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// A match: `group(n)`, `groups()`, `start()`, `end()`; truthy.
#[derive(Debug)]
struct Match {
    groups: Vec<Option<String>>,
    names: Vec<Option<String>>,
    span: (usize, usize),
}

impl Match {
    fn new(regex: &regex::Regex, captures: &regex::Captures<'_>) -> Match {
        let whole = captures.get(0).expect("group 0");
        Match {
            groups: (0..captures.len()).map(|i| captures.get(i).map(|m| m.as_str().to_string())).collect(),
            names: regex.capture_names().map(|n| n.map(str::to_string)).collect(),
            span: (whole.start(), whole.end()),
        }
    }

    fn group(&self, which: &Value) -> Result<Value, Error> {
        let index = match which.as_str() {
            Some(name) => self.names.iter().position(|n| n.as_deref() == Some(name)),
            None => usize::try_from(which.clone()).ok(),
        };
        match index.and_then(|i| self.groups.get(i)) {
            Some(group) => Ok(Value::from(group.clone())),
            None => Err(invalid(format!("modules.re: no such group {which}"))),
        }
    }
}

impl Object for Match {
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "group" if args.len() <= 1 => self.group(args.first().unwrap_or(&Value::from(0))),
            "group" => Ok(Value::from(args.iter().map(|a| self.group(a)).collect::<Result<Vec<_>, _>>()?)),
            "groups" => Ok(Value::from_iter(self.groups.iter().skip(1).map(|g| Value::from(g.clone())))),
            "start" => Ok(Value::from(self.span.0)),
            "end" => Ok(Value::from(self.span.1)),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }
}

/// `modules.datetime`: `datetime.now()`, `datetime.utcnow()`, `date.today()`.
#[derive(Debug)]
struct DatetimeModule;

impl Object for DatetimeModule {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "datetime" => Some(Value::from_object(DatetimeClass { date_only: false })),
            "date" => Some(Value::from_object(DatetimeClass { date_only: true })),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct DatetimeClass {
    date_only: bool,
}

impl Object for DatetimeClass {
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, Error> {
        let now = match method {
            "now" | "today" => chrono::Local::now().naive_local(),
            "utcnow" => chrono::Utc::now().naive_utc(),
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        };
        Ok(Value::from_object(DateTime { at: now, date_only: self.date_only }))
    }
}

/// A `datetime` / `date`: `strftime`, `isoformat`, `year`, `month`, `day`, `hour`, …; renders as Python's `str()`.
#[derive(Debug)]
struct DateTime {
    at: NaiveDateTime,
    date_only: bool,
}

impl Object for DateTime {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from(match key.as_str()? {
            "year" => self.at.year() as i64,
            "month" => self.at.month() as i64,
            "day" => self.at.day() as i64,
            "hour" => self.at.hour() as i64,
            "minute" => self.at.minute() as i64,
            "second" => self.at.second() as i64,
            _ => return None,
        }))
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (format,): (String,) = from_args(args)?;
                Ok(Value::from(self.at.format(&format).to_string()))
            }
            "isoformat" => Ok(Value::from(self.text("T"))),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text(" "))
    }
}

impl DateTime {
    fn text(&self, separator: &str) -> String {
        if self.date_only {
            self.at.format("%Y-%m-%d").to_string()
        } else {
            self.at.format(&format!("%Y-%m-%d{separator}%H:%M:%S%.6f")).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_replacements_become_regex_ones() {
        assert_eq!(python_replacement(r"\1-\g<2>-\g<name>"), "${1}-${2}-${name}");
        assert_eq!(python_replacement("_$"), "_$$");
        let re = compile("^[0-9]", 0).unwrap();
        assert_eq!(re.replacen("9lives", 0, python_replacement("_9").as_str()), "_9lives");
    }
}
