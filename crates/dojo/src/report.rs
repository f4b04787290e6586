//! What a step's check found, and how it is printed: `✔` right, `✘` wrong, `·` a note, `→`
//! the next hint.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Right,
    Wrong,
    /// Neither: context the learner should know (a version, a skipped sub-check).
    Note,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub verdict: Verdict,
    pub text: String,
}

/// The findings of one step, and the hint to show when something is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub step: &'static str,
    pub findings: Vec<Finding>,
    /// Shown after the findings when the step is not done; the first hint of the step's page
    /// when no finding gave a more precise one.
    pub hint: Option<String>,
}

impl Report {
    pub fn new(step: &'static str) -> Self {
        Self {
            step,
            findings: Vec::new(),
            hint: None,
        }
    }

    pub fn right(&mut self, text: impl Into<String>) {
        self.push(Verdict::Right, text);
    }

    pub fn wrong(&mut self, text: impl Into<String>) {
        self.push(Verdict::Wrong, text);
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.push(Verdict::Note, text);
    }

    /// `right` or `wrong` depending on `ok`.
    pub fn expect(&mut self, ok: bool, right: impl Into<String>, wrong: impl Into<String>) {
        if ok {
            self.right(right);
        } else {
            self.wrong(wrong);
        }
    }

    /// Sets the hint unless a more precise one was set before.
    pub fn hint(&mut self, hint: impl Into<String>) {
        self.hint.get_or_insert_with(|| hint.into());
    }

    fn push(&mut self, verdict: Verdict, text: impl Into<String>) {
        self.findings.push(Finding {
            verdict,
            text: text.into(),
        });
    }

    /// No wrong finding.
    pub fn done(&self) -> bool {
        self.findings.iter().all(|f| f.verdict != Verdict::Wrong)
    }

    pub fn wrong_texts(&self) -> impl Iterator<Item = &str> {
        self.findings
            .iter()
            .filter(|f| f.verdict == Verdict::Wrong)
            .map(|f| f.text.as_str())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "step {}:", self.step)?;
        for finding in &self.findings {
            let mark = match finding.verdict {
                Verdict::Right => '✔',
                Verdict::Wrong => '✘',
                Verdict::Note => '·',
            };
            writeln!(f, "  {mark} {}", finding.text)?;
        }
        if self.done() {
            writeln!(f, "  done.")
        } else {
            match &self.hint {
                Some(hint) => writeln!(f, "  → {hint}"),
                None => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_done_only_without_wrong_findings_and_shows_its_hint_otherwise() {
        let mut report = Report::new("hpa");
        report.right("HPA consumer exists");
        report.note("Kubernetes v1.37.2");
        report.hint("first hint");
        assert!(report.done());
        assert_eq!(
            report.to_string(),
            "step hpa:\n  ✔ HPA consumer exists\n  · Kubernetes v1.37.2\n  done.\n"
        );
        report.wrong("target.type is Value");
        report.hint("a later, less precise hint");
        assert!(!report.done());
        assert!(
            report
                .to_string()
                .ends_with("  ✘ target.type is Value\n  → first hint\n")
        );
    }
}
