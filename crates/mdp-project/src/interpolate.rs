//! `${VAR}` interpolation of the raw project file, before YAML parsing.
//!
//! Interpolating the text (rather than parsed values) lets a variable fill any scalar, including numbers
//! and booleans, while keeping every line where it was, so errors still point at the user's line.
//!
//! Syntax:
//! - `${NAME}`: the variable's value; an error when it is unset.
//! - `${NAME:-default}`: the value, or `default` when the variable is unset or empty (as in POSIX shells).
//! - `$$`: a literal `$`. Any other `$` is kept as it is.
//!
//! Comments are left alone: whole comment lines and trailing `# ...` comments, so commented-out examples
//! may mention variables that are not set. Values are inserted verbatim and may not contain a newline.

use crate::env::{is_valid_env_var_name, EnvLookup};

/// The interpolated text, plus what is needed to map its columns back to the raw file.
#[derive(Debug)]
pub(crate) struct Interpolated {
    pub(crate) text: String,
    /// For each line (0-based), the substitutions made in it, left to right.
    substitutions_by_line: Vec<Vec<Substitution>>,
}

/// One `${...}` or `$$` replaced in a line. Columns count characters, 0-based.
#[derive(Debug, Clone, Copy)]
struct Substitution {
    raw_column: usize,
    raw_width: usize,
    output_column: usize,
    output_width: usize,
}

/// A problem at a 1-based line and column of the raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InterpolationError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

impl Interpolated {
    /// Maps a 1-based column of the interpolated `line` back to the column in the raw text.
    /// A column inside a substituted value maps to the start of its `${...}`.
    pub(crate) fn raw_column(&self, line: usize, column: usize) -> usize {
        let Some(substitutions) = line.checked_sub(1).and_then(|index| self.substitutions_by_line.get(index)) else {
            return column;
        };
        let output_column = column.saturating_sub(1);
        let mut shift: isize = 0;
        for substitution in substitutions {
            if output_column < substitution.output_column {
                break;
            }
            if output_column < substitution.output_column + substitution.output_width {
                return substitution.raw_column + 1;
            }
            shift = (substitution.raw_column + substitution.raw_width) as isize
                - (substitution.output_column + substitution.output_width) as isize;
        }
        (output_column as isize + shift) as usize + 1
    }
}

/// Interpolates every line of `raw`, collecting every problem rather than stopping at the first.
pub(crate) fn interpolate(raw: &str, env: &dyn EnvLookup) -> Result<Interpolated, Vec<InterpolationError>> {
    let mut text = String::with_capacity(raw.len());
    let mut substitutions_by_line = Vec::new();
    let mut errors = Vec::new();
    for (line_index, line_with_ending) in raw.split_inclusive('\n').enumerate() {
        let line = line_with_ending.trim_end_matches(['\n', '\r']);
        let ending = &line_with_ending[line.len()..];
        let mut substitutions = Vec::new();
        if line.trim_start().starts_with('#') {
            text.push_str(line);
        } else {
            interpolate_line(line, line_index + 1, env, &mut text, &mut substitutions, &mut errors);
        }
        text.push_str(ending);
        substitutions_by_line.push(substitutions);
    }
    if errors.is_empty() {
        Ok(Interpolated { text, substitutions_by_line })
    } else {
        Err(errors)
    }
}

fn interpolate_line(
    line: &str,
    line_number: usize,
    env: &dyn EnvLookup,
    output: &mut String,
    substitutions: &mut Vec<Substitution>,
    errors: &mut Vec<InterpolationError>,
) {
    let characters: Vec<char> = line.chars().collect();
    let mut output_column = 0;
    let mut quote: Option<char> = None;
    let mut index = 0;
    while index < characters.len() {
        let character = characters[index];
        let previous = index.checked_sub(1).map(|previous| characters[previous]);
        let at_scalar_start = previous.is_none_or(|previous| previous.is_whitespace() || "[{,:".contains(previous));
        match (character, quote) {
            // A trailing comment: copy the rest of the line untouched.
            ('#', None) if previous.is_none_or(char::is_whitespace) => {
                output.extend(&characters[index..]);
                return;
            }
            ('"' | '\'', None) if at_scalar_start => quote = Some(character),
            ('\\', Some('"')) if index + 1 < characters.len() => {
                output.push(character);
                output.push(characters[index + 1]);
                index += 2;
                output_column += 2;
                continue;
            }
            (current, Some(open)) if current == open => quote = None,
            ('$', _) => {
                if let Some((raw_width, value)) =
                    expand_dollar(&characters[index..], line_number, index + 1, env, errors)
                {
                    let output_width = value.chars().count();
                    substitutions.push(Substitution { raw_column: index, raw_width, output_column, output_width });
                    output.push_str(&value);
                    output_column += output_width;
                    index += raw_width;
                    continue;
                }
            }
            _ => {}
        }
        output.push(character);
        output_column += 1;
        index += 1;
    }
}

/// Expands the `$...` at the start of `rest`: returns how many raw characters it spans and its value,
/// or `None` when the `$` is literal (or wrong, in which case an error is recorded).
fn expand_dollar(
    rest: &[char],
    line: usize,
    column: usize,
    env: &dyn EnvLookup,
    errors: &mut Vec<InterpolationError>,
) -> Option<(usize, String)> {
    let mut error = |message: String| {
        errors.push(InterpolationError { line, column, message });
        None
    };
    match rest.get(1) {
        Some('$') => Some((2, "$".to_owned())),
        Some('{') => {
            let Some(closing) = rest.iter().position(|&character| character == '}') else {
                return error("unterminated `${`: write `${VAR_NAME}`, or `$$` for a literal `$`".to_owned());
            };
            let inside: String = rest[2..closing].iter().collect();
            let (name, default) = match inside.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inside.as_str(), None),
            };
            if !is_valid_env_var_name(name) {
                return error(format!(
                    "`${{{inside}}}` does not name an environment variable: expected `${{VAR_NAME}}` or \
                     `${{VAR_NAME:-default}}` with VAR_NAME made of letters, digits and _; write `$$` for a literal `$`"
                ));
            }
            let value = match (env.var(name), default) {
                (Some(value), Some(default)) if value.is_empty() => default.to_owned(),
                (Some(value), _) => value,
                (None, Some(default)) => default.to_owned(),
                (None, None) => {
                    return error(format!(
                    "environment variable {name} is not set; export it, or give a default with `${{{name}:-default}}`"
                ))
                }
            };
            if value.contains(['\n', '\r']) {
                // The value is never printed: it may be a secret.
                return error(format!(
                    "environment variable {name} contains a line break, which cannot be inserted into mdp.yml"
                ));
            }
            Some((closing + 1, value))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db.example.com".to_owned()),
            "EMPTY" => Some(String::new()),
            "MULTILINE" => Some("a\nb".to_owned()),
            _ => None,
        }
    }

    fn check(input: &str, expected: &str) {
        let interpolated = interpolate(input, &env).unwrap_or_else(|errors| panic!("{input}: {errors:?}"));
        assert_eq!(interpolated.text, expected, "input: {input}");
    }

    fn check_error(input: &str, expected_line: usize, expected_column: usize, expected_message: &str) {
        let errors = interpolate(input, &env).expect_err(input);
        let error = &errors[0];
        assert_eq!((error.line, error.column), (expected_line, expected_column), "{input}: {error:?}");
        assert!(error.message.contains(expected_message), "{input}: {}", error.message);
    }

    #[test]
    fn substitutes_variables_and_defaults() {
        check("url: postgres://${HOST}/db\n", "url: postgres://db.example.com/db\n");
        check("port: ${PORT:-5432}\n", "port: 5432\n");
        check("port: ${HOST:-localhost}\n", "port: db.example.com\n");
        check("schema: ${EMPTY:-public}\n", "schema: public\n");
        check("schema: ${EMPTY}\n", "schema: \n");
        check("a: ${PORT:-}\n", "a: \n");
        check("a: \"${HOST}\"\n", "a: \"db.example.com\"\n");
    }

    #[test]
    fn dollars_and_comments() {
        check("password: pa$$word\n", "password: pa$word\n");
        check("price: $5 and ${HOST}$\n", "price: $5 and db.example.com$\n");
        check("literal: $${HOST}\n", "literal: ${HOST}\n");
        check("# url: ${UNSET}\n  # ${UNSET}\n", "# url: ${UNSET}\n  # ${UNSET}\n");
        check("a: ${HOST} # not ${UNSET}\n", "a: db.example.com # not ${UNSET}\n");
        check("a: 'x # ${HOST}'\n", "a: 'x # db.example.com'\n");
        check("a: \"x \\\" # ${HOST}\"\n", "a: \"x \\\" # db.example.com\"\n");
        check("a: b#${HOST}\n", "a: b#db.example.com\n");
        check("a: 1\r\nb: ${HOST}\r\n", "a: 1\r\nb: db.example.com\r\n");
    }

    #[test]
    fn reports_problems_at_their_position() {
        check_error("a: 1\nurl: ${MDP_POSTGRES_URL}\n", 2, 6, "environment variable MDP_POSTGRES_URL is not set");
        check_error("a: ${HOST\n", 1, 4, "unterminated `${`");
        check_error("a: ${1X}\n", 1, 4, "`${1X}` does not name an environment variable");
        check_error("a: ${MULTILINE}\n", 1, 4, "contains a line break");
        let errors = interpolate("a: ${ONE}\nb: ${TWO} ${THREE}\n", &env).unwrap_err();
        assert_eq!(errors.len(), 3, "every problem is reported: {errors:?}");
    }

    #[test]
    fn maps_columns_back_to_the_raw_text() {
        let interpolated = interpolate("x: {a: ${HOST}, b: $$, c: [}\n", &env).unwrap();
        assert_eq!(interpolated.text, "x: {a: db.example.com, b: $, c: [}\n");
        let column_of = |needle: &str| interpolated.text.find(needle).unwrap() + 1;
        assert_eq!(interpolated.raw_column(1, column_of("c:")), "x: {a: ${HOST}, b: $$, c: [}".find("c:").unwrap() + 1);
        assert_eq!(interpolated.raw_column(1, column_of("example")), 8, "inside a value: the `${{` column");
        assert_eq!(interpolated.raw_column(1, 2), 2, "before any substitution");
        assert_eq!(interpolated.raw_column(2, 9), 9, "a line past the end");
    }
}
