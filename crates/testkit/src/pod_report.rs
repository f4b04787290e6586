//! What a test prints when pods do not get ready: the pods, the kubelet's events for them
//! (probe output, image pulls, kills), the logs of each container and of its previous run,
//! and the end of the node's own logs. Without it a rollout that times out says only
//! "timed out waiting for the condition", and a failure that happens on one machine and not
//! on another cannot be told apart.

use std::fmt::Write as _;
use std::time::Duration;

use crate::control_plane::ControlPlane;

/// Lines of each log kept in a report: enough for the last restarts, short enough to read.
const TAIL: usize = 40;

impl ControlPlane {
    /// `kubectl rollout status deployment/<deployment> -n <namespace>`; on a timeout the
    /// error carries [`ControlPlane::pod_report`] for the namespace.
    pub async fn rollout(
        &self,
        namespace: &str,
        deployment: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let target = format!("deployment/{deployment}");
        let limit = format!("--timeout={}s", timeout.as_secs().max(1));
        match self
            .kubectl(&["rollout", "status", &target, "-n", namespace, &limit])
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => Err(format!(
                "{target} in {namespace}: {error}\n{}",
                self.pod_report(namespace).await
            )),
        }
    }

    /// Everything the API and the node say about the pods of `namespace` (see the module
    /// docs). Never fails: what cannot be read is named in the report instead.
    pub async fn pod_report(&self, namespace: &str) -> String {
        let mut report = format!("--- pod report for namespace {namespace}\n");
        let mut section = |title: &str, text: Result<String, String>| {
            let text = text.unwrap_or_else(|error| format!("(cannot read: {error})"));
            let _ = writeln!(report, "--- {title}\n{}", tail(text.trim_end(), TAIL * 2));
        };
        let kubectl = |args: Vec<String>| async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            self.kubectl(&args).await.map_err(|error| error.to_string())
        };
        let ns = namespace.to_owned();
        section(
            "pods",
            kubectl(vec![
                "get".into(),
                "pods".into(),
                "-o".into(),
                "wide".into(),
                "-n".into(),
                ns.clone(),
            ])
            .await,
        );
        section(
            "events",
            kubectl(vec![
                "get".into(),
                "events".into(),
                "-n".into(),
                ns.clone(),
                "--sort-by=.lastTimestamp".into(),
            ])
            .await,
        );
        let names = kubectl(vec![
            "get".into(),
            "pods".into(),
            "-n".into(),
            ns.clone(),
            "-o".into(),
            "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}".into(),
        ])
        .await
        .unwrap_or_default();
        for pod in names.lines().filter(|name| !name.is_empty()) {
            for previous in [false, true] {
                let mut args = vec![
                    "logs".into(),
                    pod.to_owned(),
                    "-n".into(),
                    ns.clone(),
                    "--all-containers".into(),
                    format!("--tail={TAIL}"),
                ];
                if previous {
                    args.push("--previous".into());
                }
                let which = if previous {
                    "previous run"
                } else {
                    "current run"
                };
                match kubectl(args).await {
                    Ok(text) => section(&format!("logs of {pod} ({which})"), Ok(text)),
                    // No previous run is the common case: not worth a section.
                    Err(_) if previous => {}
                    Err(error) => section(&format!("logs of {pod} ({which})"), Err(error)),
                }
            }
        }
        for log in ["kubelet", "containerd"] {
            let path = self.dir().join("logs").join(format!("{log}.log"));
            if let Ok(text) = std::fs::read_to_string(&path) {
                section(&format!("{} (end)", path.display()), Ok(text));
            }
        }
        report
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let skipped = all.len().saturating_sub(lines);
    let mut kept = all[skipped..].join("\n");
    if skipped > 0 {
        kept.insert_str(0, &format!("[{skipped} earlier lines left out]\n"));
    }
    kept
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tail_keeps_the_last_lines_and_says_how_many_it_left_out() {
        assert_eq!(
            super::tail("a\nb\nc", 2),
            "[1 earlier lines left out]\nb\nc"
        );
        assert_eq!(super::tail("a\nb", 5), "a\nb");
    }
}
