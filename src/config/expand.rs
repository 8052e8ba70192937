//! `${VAR}` and `${VAR:-default}` expansion over the raw file text.
//!
//! Expansion runs on the text before YAML parsing so that every later
//! diagnostic keeps the line numbers of the file the operator wrote. YAML
//! comments are left alone: a commented-out line that names an unset variable
//! is not an error. Expanded values are not expanded again, and `$$` has no
//! special meaning (it stays as written).
//!
//! A value goes into the text as it is: one that could read as YAML syntax
//! (`: `, ` #`, a leading `*` or `{`) needs quotes around the reference,
//! e.g. `key: "${TEAM_A_KEY}"`.

/// One problem found while expanding: the 1-based line and what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub line: usize,
    pub message: String,
}

/// Expands every `${NAME}` and `${NAME:-default}` in `text`, looking names up
/// with `env`.
///
/// Returns the expanded text and every problem found; a reference that could
/// not be expanded is replaced by nothing, so that parsing can go on and report
/// other problems too. `${NAME:-default}` takes the default when `NAME` is
/// unset or empty, as in the shell.
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> (String, Vec<ExpandError>) {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        expand_line(line, index + 1, env, &mut out, &mut errors);
    }
    (out, errors)
}

/// Expands one line (with its line break, if any) into `out`.
fn expand_line(
    line: &str,
    number: usize,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
    errors: &mut Vec<ExpandError>,
) {
    let mut quote: Option<char> = None;
    let mut prev: Option<char> = None;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '$' && rest[1..].starts_with('{') {
            let Some(close) = rest.find('}') else {
                errors.push(ExpandError {
                    line: number,
                    message: "unterminated `${`: write `${NAME}` or `${NAME:-default}`".into(),
                });
                out.push_str(rest);
                return;
            };
            let inner = &rest[2..close];
            match resolve(inner, env) {
                Ok(value) => out.push_str(&value),
                Err(message) => errors.push(ExpandError {
                    line: number,
                    message,
                }),
            }
            rest = &rest[close + 1..];
            prev = Some('}');
            continue;
        }
        match quote {
            Some('"') if c == '\\' => {
                // An escaped character inside double quotes cannot close them.
                let len = rest.chars().nth(1).map_or(1, |next| 1 + next.len_utf8());
                out.push_str(&rest[..len]);
                rest = &rest[len..];
                prev = Some(c);
                continue;
            }
            Some('\'') if c == '\'' && rest[1..].starts_with('\'') => {
                // `''` is an escaped quote inside single quotes, not an end.
                out.push_str("''");
                rest = &rest[2..];
                prev = Some(c);
                continue;
            }
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => {
                let at_token_start = prev.is_none_or(|p| p.is_whitespace() || "[{,".contains(p));
                if c == '#' && prev.is_none_or(char::is_whitespace) {
                    // The rest of the line is a comment: copied, never expanded.
                    out.push_str(rest);
                    return;
                }
                if (c == '"' || c == '\'') && at_token_start {
                    quote = Some(c);
                }
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        prev = Some(c);
    }
}

/// Resolves the inside of one `${...}`.
fn resolve(inner: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    if !is_variable_name(name) {
        return Err(format!(
            "invalid variable reference `${{{inner}}}`: write `${{NAME}}` or `${{NAME:-default}}` (NAME is letters, digits and _)"
        ));
    }
    let value = match (env(name), default) {
        (Some(value), Some(default)) if value.is_empty() => default.to_string(),
        (Some(value), _) => value,
        (None, Some(default)) => default.to_string(),
        (None, None) => {
            return Err(format!(
                "environment variable {name} is not set: set it, or write `${{{name}:-default}}`"
            ))
        }
    };
    if value.contains(['\n', '\r']) {
        return Err(format!(
            "environment variable {name} contains a line break, which cannot be put into the file"
        ));
    }
    Ok(value)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-123".into()),
            "EMPTY" => Some(String::new()),
            "MULTI" => Some("a\nb".into()),
            _ => None,
        }
    }

    fn ok(text: &str) -> String {
        let (out, errors) = expand(text, &env);
        assert_eq!(errors, vec![], "unexpected errors for {text:?}");
        out
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        assert_eq!(ok("key: ${KEY}\n"), "key: sk-123\n");
        assert_eq!(ok("a: ${NOPE:-x y}, b: ${KEY:-z}"), "a: x y, b: sk-123");
        assert_eq!(ok("a: ${EMPTY:-fallback}"), "a: fallback");
        assert_eq!(ok("a: ${EMPTY}"), "a: ");
        assert_eq!(ok("a: ${NOPE:-}"), "a: ");
        assert_eq!(
            ok("url: http://${KEY}:80/${KEY}"),
            "url: http://sk-123:80/sk-123"
        );
        assert_eq!(ok("a: \"${KEY}\" b: '${KEY}'"), "a: \"sk-123\" b: 'sk-123'");
    }

    #[test]
    fn leaves_plain_dollars_and_comments_alone() {
        assert_eq!(ok("price: $5 and $$ and $KEY"), "price: $5 and $$ and $KEY");
        assert_eq!(ok("# key: ${NOPE}\n"), "# key: ${NOPE}\n");
        assert_eq!(ok("a: ${KEY} # was ${NOPE}\n"), "a: sk-123 # was ${NOPE}\n");
        // `#` inside quotes or glued to a word is not a comment.
        assert_eq!(ok("a: \"x # ${KEY}\""), "a: \"x # sk-123\"");
        assert_eq!(ok("a: 'it''s # ${KEY}'"), "a: 'it''s # sk-123'");
        assert_eq!(ok("a: \"q\\\" # ${KEY}\""), "a: \"q\\\" # sk-123\"");
        assert_eq!(ok("a: b#${KEY}"), "a: b#sk-123");
        // An apostrophe inside a plain scalar does not open a quote.
        assert_eq!(ok("a: don't # ${NOPE}"), "a: don't # ${NOPE}");
    }

    #[test]
    fn reports_every_problem_with_its_line() {
        let text = "a: 1\nb: ${MISSING}\nc: ${ALSO_MISSING} ${KEY}\nd: ${bad-name}\ne: ${KEY\nf: ${MULTI}\n";
        let (out, errors) = expand(text, &env);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
        assert!(errors[0].message.contains("MISSING is not set"));
        assert!(errors[0].message.contains("${MISSING:-default}"));
        assert!(errors[1].message.contains("ALSO_MISSING"));
        assert!(errors[2]
            .message
            .contains("invalid variable reference `${bad-name}`"));
        assert!(errors[3].message.contains("unterminated"));
        assert!(errors[4].message.contains("line break"));
        // Failed references vanish so the text still parses; lines stay put.
        assert_eq!(out, "a: 1\nb: \nc:  sk-123\nd: \ne: ${KEY\nf: \n");
    }

    #[test]
    fn keeps_crlf_and_unicode() {
        assert_eq!(ok("a: ü${KEY}é\r\nb: 2"), "a: üsk-123é\r\nb: 2");
    }
}
