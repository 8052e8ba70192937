//! What the loader reports: `FILE:LINE: message`, one per problem.

use std::fmt;

/// One problem in a config file, with the line to look at and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the operator named it.
    pub file: String,
    /// 1-based; whole-file problems are reported at line 1.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
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
            message: "unknown provider `nope`".into(),
        };
        assert_eq!(
            d.to_string(),
            "conf/switchyard.yaml:12: unknown provider `nope`"
        );
    }

    #[test]
    fn problems_never_sit_on_line_zero() {
        assert_eq!(Problem::new(0, "x").line, 1);
    }
}
