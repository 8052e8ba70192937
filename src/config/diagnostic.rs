//! What the loader reports: `FILE:LINE: message` for a problem, and
//! `FILE:LINE: warning: message` for a setting the operator should know about.

use std::fmt;

/// Whether a [`Diagnostic`] stops the file from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The file is refused: `check` exits 2, a reload keeps the old config.
    Error,
    /// The file loads; `check` still exits 0.
    Warning,
}

/// One problem in a config file, with the line to look at and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the operator named it.
    pub file: String,
    /// 1-based; whole-file problems are reported at line 1.
    pub line: usize,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        write!(f, "{}:{}: {label}{}", self.file, self.line, self.message)
    }
}

/// A problem found inside the loader, before the file name is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub line: usize,
    pub message: String,
}

impl Problem {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        Problem {
            line: line.max(1),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_file_line_message() {
        let d = Diagnostic {
            file: "conf/switchyard.yaml".into(),
            line: 12,
            severity: Severity::Error,
            message: "unknown provider `nope`".into(),
        };
        assert_eq!(
            d.to_string(),
            "conf/switchyard.yaml:12: unknown provider `nope`"
        );
        let w = Diagnostic {
            severity: Severity::Warning,
            message: "ratelimit is not enforced yet".into(),
            ..d
        };
        assert_eq!(
            w.to_string(),
            "conf/switchyard.yaml:12: warning: ratelimit is not enforced yet"
        );
    }

    #[test]
    fn problems_never_sit_on_line_zero() {
        assert_eq!(Problem::new(0, "x").line, 1);
    }
}
