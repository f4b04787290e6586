//! The bug hunt (docs/dojo/10-bug-hunt.md): the learner's `<file>:<line>` against the line of
//! kubernetes/kubernetes that divides by the replica count, at the cluster's version.
//!
//! The table holds the releases whose source was read (k8s.io/kubernetes v1.37.0, the kind
//! node image of scripts/bootstrap.sh, v1.37.1, and v1.37.2, the test control plane's, each
//! from the Go module cache): the same lines in all three. Other releases are compared with
//! the newest of them, and the check says so.

use crate::report::Report;

pub const FILE: &str = "pkg/controller/podautoscaler/replica_calculator.go";

/// Where the bug is in one release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BugSite {
    pub version: &'static str,
    /// `usage = int64(math.Ceil(float64(usage) / float64(statusReplicas)))` in
    /// `GetObjectPerPodMetricReplicas`: the −2⁶³ of an Object metric.
    pub line: u32,
    /// The first line of `GetObjectPerPodMetricReplicas`.
    pub function_start: u32,
    /// Its last line (the closing brace).
    pub function_end: u32,
    /// The ratio on the same 0, which only gives +Inf and is then ignored.
    pub ratio_line: u32,
    /// The same division in `GetExternalPerPodMetricReplicas` (External metrics).
    pub external_line: u32,
}

/// In release order: the last one stands in for releases not listed.
pub const KNOWN: &[BugSite] = &[
    BugSite {
        version: "v1.37.0",
        ..V1_37_2
    },
    BugSite {
        version: "v1.37.1",
        ..V1_37_2
    },
    V1_37_2,
];

const V1_37_2: BugSite = BugSite {
    version: "v1.37.2",
    line: 323,
    function_start: 311,
    function_end: 325,
    ratio_line: 318,
    external_line: 417,
};

/// An answer as the learner gives it: `pkg/…/replica_calculator.go:323`, the same with
/// `kubernetes/` in front, a bare `replica_calculator.go:323`, or a GitHub link ending in
/// `replica_calculator.go#L323`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub file: String,
    pub line: u32,
}

impl std::str::FromStr for Answer {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (file, line) = text
            .rsplit_once("#L")
            .or_else(|| text.rsplit_once(':'))
            .ok_or_else(|| {
                format!(
                    "--answer {text:?}: expected <file>:<line>, e.g. pkg/controller/…/file.go:123"
                )
            })?;
        let line = line
            .parse()
            .map_err(|_| format!("--answer {text:?}: {line:?} is not a line number"))?;
        // A GitHub link: keep what follows /blob/<ref>/.
        let file = match file.split_once("/blob/") {
            Some((_, rest)) => rest.split_once('/').map_or(rest, |(_, path)| path),
            None => file,
        };
        let file = file
            .trim_start_matches("./")
            .trim_start_matches("kubernetes/");
        Ok(Self {
            file: file.to_owned(),
            line,
        })
    }
}

/// The site for `version` (`gitVersion` of the cluster), and whether it is that release's
/// own (false: compared with the newest known one).
pub fn site_for(version: Option<&str>) -> (BugSite, bool) {
    let base = version.map(|v| v.split(['+', '-']).next().unwrap_or(v));
    match KNOWN.iter().find(|site| Some(site.version) == base) {
        Some(site) => (*site, true),
        None => (KNOWN[KNOWN.len() - 1], false),
    }
}

/// Judges `answer` against `site`.
pub fn judge(answer: &Answer, site: &BugSite, report: &mut Report) {
    let right_file = answer.file == FILE || FILE.ends_with(&format!("/{}", answer.file));
    if !right_file {
        report.wrong(format!(
            "{} is not where the HPA computes its metric's current value",
            answer.file
        ));
        report.hint("hint 2 of docs/dojo/10-bug-hunt.md: the HPA computes the replica count and the metric's value in pkg/controller/podautoscaler/replica_calculator.go");
        return;
    }
    let at = |line: u32| format!("{FILE}:{line} at {}", site.version);
    if answer.line == site.line {
        report.right(format!(
            "{}: `usage = int64(math.Ceil(float64(usage) / float64(statusReplicas)))` in GetObjectPerPodMetricReplicas divides by the target's status.replicas, 0 after the scale to zero: 0/0 is NaN, and int64(NaN) is −2⁶³ on amd64",
            at(site.line)
        ));
    } else if answer.line == site.external_line {
        report.wrong(format!(
            "{}: the same division in GetExternalPerPodMetricReplicas, the External-metric twin; your HPA uses an Object metric: find its twin",
            at(answer.line)
        ));
        report.hint("your metric is an Object metric with an AverageValue target: look in GetObjectPerPodMetricReplicas");
    } else if answer.line == site.ratio_line {
        report.wrong(format!(
            "{}: this divides by the same 0, but only yields +Inf for a ratio that is then ignored; the value written to the status is computed a few lines further",
            at(answer.line)
        ));
        report.hint("which line computes the `usage` that the controller writes as averageValue?");
    } else if (site.function_start..=site.function_end).contains(&answer.line) {
        report.wrong(format!(
            "{}: the right function (GetObjectPerPodMetricReplicas, lines {}–{}), not the right line",
            at(answer.line),
            site.function_start,
            site.function_end
        ));
        report
            .hint("hint 3 of docs/dojo/10-bug-hunt.md: look for a division whose divisor can be 0");
    } else {
        report.wrong(format!(
            "{}: the right file, not the right place",
            at(answer.line)
        ));
        report.hint("your metric is an Object metric with an AverageValue target: which function handles that?");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(answer: &str) -> Report {
        let mut report = Report::new("bug");
        let (site, _) = site_for(Some("v1.37.2"));
        judge(&answer.parse().unwrap(), &site, &mut report);
        report
    }

    #[test]
    fn the_line_is_accepted_in_every_spelling() {
        for answer in [
            "pkg/controller/podautoscaler/replica_calculator.go:323",
            "kubernetes/pkg/controller/podautoscaler/replica_calculator.go:323",
            "replica_calculator.go:323",
            "https://github.com/kubernetes/kubernetes/blob/v1.37.2/pkg/controller/podautoscaler/replica_calculator.go#L323",
        ] {
            assert!(judged(answer).done(), "{answer}: {}", judged(answer));
        }
    }

    #[test]
    fn near_misses_get_a_precise_hint() {
        let cases = [
            ("replica_calculator.go:417", "External-metric twin"),
            ("replica_calculator.go:318", "+Inf"),
            ("replica_calculator.go:315", "the right function"),
            (
                "replica_calculator.go:100",
                "the right file, not the right place",
            ),
            (
                "pkg/controller/podautoscaler/horizontal.go:387",
                "is not where",
            ),
        ];
        for (answer, expected) in cases {
            let report = judged(answer);
            assert!(!report.done(), "{answer}");
            assert!(
                report.wrong_texts().any(|t| t.contains(expected)),
                "{answer}: {report}"
            );
            assert!(report.hint.is_some(), "{answer}");
        }
    }

    #[test]
    fn answers_that_are_not_file_and_line_are_refused_naming_the_flag() {
        assert!(
            "replica_calculator.go"
                .parse::<Answer>()
                .unwrap_err()
                .starts_with("--answer")
        );
        assert!(
            "file.go:abc"
                .parse::<Answer>()
                .unwrap_err()
                .contains("not a line number")
        );
    }

    #[test]
    fn an_unknown_release_is_compared_with_the_newest_known_one() {
        assert_eq!(site_for(Some("v1.37.2")), (V1_37_2, true));
        assert_eq!(site_for(Some("v1.37.2+k3s1")), (V1_37_2, true));
        assert_eq!(site_for(Some("v1.37.0")).0.version, "v1.37.0");
        assert_eq!(site_for(Some("v1.37.9")), (V1_37_2, false));
        assert_eq!(site_for(None), (V1_37_2, false));
    }
}
