//! Quoting for the three languages an exported DAG file nests: Python string literals, shell words and
//! Airflow's Jinja rendering of `bash_command` (see the module docs of `airflow` for the order).

/// A Python string literal: double quotes, backslash escapes; ASCII only (anything else escaped).
pub(super) fn py_str(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xff => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if u32::from(c) <= 0xffff => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

pub(super) fn py_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

/// Characters a shell argument may hold without quotes.
fn sh_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b)
}

/// One shell word: as is when plainly safe, otherwise in single quotes (`'\''` for a quote).
/// A word ending in `.sh`/`.bash` is quoted too, so the command never ends with those suffixes.
pub(super) fn sh_word(word: &str) -> String {
    let plain = !word.is_empty() && word.bytes().all(sh_plain) && !word.ends_with(".sh") && !word.ends_with(".bash");
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Words the shell reads as syntax when they come first in a command.
const SH_RESERVED: &[&str] = &[
    "case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in", "select", "then",
    "time", "until", "while",
];

/// The command word: quoted also when it would read as an assignment (`a=b`), a job spec (`%1`)
/// or a reserved word.
pub(super) fn sh_command_word(word: &str) -> String {
    if word.contains(['=', '%']) || SH_RESERVED.contains(&word) {
        format!("'{}'", word.replace('\'', r"'\''"))
    } else {
        sh_word(word)
    }
}

/// Escape text for Airflow's Jinja rendering of `bash_command`: a `{` that would open `{{`, `{%`
/// or `{#` becomes `{{ '{' }}`, which renders to `{`. Everything else is literal to Jinja.
pub(super) fn jinja_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '{' && matches!(chars.peek(), Some('{' | '%' | '#')) {
            out.push_str("{{ '{' }}");
        } else {
            out.push(c);
        }
    }
    out
}
