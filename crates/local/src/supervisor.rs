//! Consumer replicas as child processes: the local stand-in for a Deployment.
//!
//! ```text
//!   scale(n) ─▶ Supervisor task ──signals──▶ replica task ─owns─▶ child process
//!                  ▲   │                          │ exit status
//!                  │   └── ReplicaCounts (watch)  ▼
//!                  └──── replace the crashed ◀── Exit
//! ```
//!
//! Like a Deployment, the supervisor keeps `desired` replicas running: one that exits on its
//! own is replaced (after a crash-loop backoff), scale-down sends SIGTERM to the newest so they
//! finish the item in hand and SIGKILL after the grace period, and shutdown does the same to
//! every child. Each child is owned by a task of its own that delivers signals only while the
//! child has not been reaped, so a signal never reaches a recycled pid; signals go to the
//! child's process group, which reaches what a `--consumer-cmd` shell started too.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use ebb_runtime::{Backoff, Shutdown};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::output;

/// What a replica is: the command line every replica runs, and where its output goes.
#[derive(Clone, Debug)]
pub(crate) struct ReplicaSpec {
    /// Replicas are named `<name>-<n>` in logs and file names.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub output: ReplicaOutput,
    /// An environment variable given a name unique to each replica of this run
    /// (`up<pid>-<name>-<n>`), e.g. the consumer's id in Redis.
    pub id_env: Option<String>,
    /// How long a replica may take to stop after SIGTERM before it is killed.
    pub grace_period: Duration,
}

/// Where the replicas' stdout and stderr go.
#[derive(Clone, Debug)]
pub(crate) enum ReplicaOutput {
    /// Passed through, each line prefixed with the replica's name (plain log mode).
    Prefixed,
    /// One file per replica in this existing folder (the live view owns the terminal).
    Files(PathBuf),
}

/// Replica counts as the scaler and the view see them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaCounts {
    /// The count asked for, like a Deployment's `spec.replicas`.
    pub desired: u32,
    /// Processes started and not asked to stop.
    pub running: u32,
    /// Processes sent SIGTERM, finishing their item.
    pub stopping: u32,
    /// Replicas that exited on their own and were replaced, since the start.
    pub restarts: u64,
}

/// The handle the rest of `ebb up` holds; the supervisor task owns the processes.
#[derive(Clone)]
pub(crate) struct Supervisor {
    commands: mpsc::Sender<(u32, oneshot::Sender<()>)>,
    counts: watch::Receiver<ReplicaCounts>,
}

impl Supervisor {
    /// Starts the supervisor task with 0 replicas. It runs until `shutdown` is requested, then
    /// stops every child (SIGKILL for those still there after the grace period, or at once when
    /// shutdown turns urgent); the returned handle completes once they are all gone.
    pub fn start(spec: ReplicaSpec, shutdown: Shutdown) -> (Self, tokio::task::JoinHandle<()>) {
        let (commands, requests) = mpsc::channel(16);
        let (counts_tx, counts) = watch::channel(ReplicaCounts::default());
        let task = SupervisorTask::new(spec, counts_tx);
        let join = tokio::spawn(task.run(requests, shutdown));
        (Self { commands, counts }, join)
    }

    /// Asks for `replicas` running processes. Returns once the missing ones are spawned and
    /// the extra ones signalled (or, after a crash, once the restart is scheduled), with
    /// [`counts`](Self::counts) up to date.
    pub async fn scale(&self, replicas: u32) -> Result<()> {
        let (done, applied) = oneshot::channel();
        self.commands
            .send((replicas, done))
            .await
            .map_err(|_| Error::SupervisorGone)?;
        applied.await.map_err(|_| Error::SupervisorGone)
    }

    pub fn counts(&self) -> ReplicaCounts {
        *self.counts.borrow()
    }

    pub fn watch_counts(&self) -> watch::Receiver<ReplicaCounts> {
        self.counts.clone()
    }
}

/// The supervisor's side of one child: signals go through its owning task.
struct Replica {
    signals: mpsc::UnboundedSender<Signal>,
    started: Instant,
    /// Set once SIGTERM was sent: SIGKILL follows at this instant.
    kill_at: Option<Instant>,
}

impl Replica {
    fn signal(&self, signal: Signal) {
        // The task is gone only once the child exited; its Exit is on its way.
        let _ = self.signals.send(signal);
    }
}

struct Exit {
    index: u64,
    status: std::io::Result<ExitStatus>,
}

/// A replica that ran this long before crashing was healthy: the backoff starts over.
const HEALTHY_RUN: Duration = Duration::from_secs(10);

struct SupervisorTask {
    spec: ReplicaSpec,
    counts: watch::Sender<ReplicaCounts>,
    desired: u32,
    running: BTreeMap<u64, Replica>,
    stopping: BTreeMap<u64, Replica>,
    next_index: u64,
    restarts: u64,
    backoff: Backoff,
    /// No replica starts before this instant (a crash loop is backing off).
    restart_at: Option<Instant>,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits: mpsc::UnboundedReceiver<Exit>,
}

impl SupervisorTask {
    fn new(spec: ReplicaSpec, counts: watch::Sender<ReplicaCounts>) -> Self {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        Self {
            spec,
            counts,
            desired: 0,
            running: BTreeMap::new(),
            stopping: BTreeMap::new(),
            next_index: 1,
            restarts: 0,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
            restart_at: None,
            exits_tx,
            exits,
        }
    }

    async fn run(
        mut self,
        mut requests: mpsc::Receiver<(u32, oneshot::Sender<()>)>,
        shutdown: Shutdown,
    ) {
        let mut stopping_all = false;
        let mut urgent = false;
        loop {
            let restart_at = self.restart_at.filter(|_| !stopping_all);
            let kill_at = self.stopping.values().filter_map(|r| r.kill_at).min();
            tokio::select! {
                () = shutdown.requested(), if !stopping_all => {
                    stopping_all = true;
                    self.desired = 0;
                    self.reconcile();
                }
                () = shutdown.urgent(), if !urgent => {
                    urgent = true;
                    stopping_all = true;
                    self.desired = 0;
                    self.reconcile();
                    self.kill_stopping_before(Instant::now() + self.spec.grace_period);
                }
                request = requests.recv(), if !stopping_all => match request {
                    Some((replicas, done)) => {
                        self.desired = replicas;
                        self.reconcile();
                        let _ = done.send(());
                    }
                    // Every handle is gone: nobody can scale any more, so stop.
                    None => {
                        stopping_all = true;
                        self.desired = 0;
                        self.reconcile();
                    }
                },
                Some(exit) = self.exits.recv() => {
                    self.on_exit(exit);
                    self.reconcile();
                }
                () = sleep_until(restart_at) => {
                    self.restart_at = None;
                    self.reconcile();
                }
                () = sleep_until(kill_at) => self.kill_stopping_before(Instant::now()),
            }
            if stopping_all && self.running.is_empty() && self.stopping.is_empty() {
                return;
            }
        }
    }

    /// Brings the running count to `desired`: asks the newest extra ones to stop, starts the
    /// missing unless a crash loop is backing off.
    fn reconcile(&mut self) {
        while self.running.len() > self.desired as usize {
            let (index, mut replica) = self.running.pop_last().expect("running is not empty");
            replica.signal(Signal::SIGTERM);
            replica.kill_at = Some(Instant::now() + self.spec.grace_period);
            self.stopping.insert(index, replica);
        }
        while self.running.len() < self.desired as usize && self.restart_at.is_none() {
            if let Err(error) = self.spawn() {
                tracing::error!("{error}");
                self.back_off();
            }
        }
        self.publish();
    }

    /// SIGKILL to every stopping replica whose grace period ends before `deadline`.
    fn kill_stopping_before(&mut self, deadline: Instant) {
        for (index, replica) in &mut self.stopping {
            if replica.kill_at.is_some_and(|at| at <= deadline) {
                tracing::warn!(
                    "{}-{index} still running {:?} after SIGTERM; killing it",
                    self.spec.name,
                    self.spec.grace_period
                );
                replica.signal(Signal::SIGKILL);
                replica.kill_at = None;
            }
        }
    }

    fn spawn(&mut self) -> Result<()> {
        let index = self.next_index;
        self.next_index += 1;
        let name = format!("{}-{index}", self.spec.name);
        let mut command = Command::new(&self.spec.program);
        command
            .args(&self.spec.args)
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .env("EBB_REPLICA_NAME", &name)
            .stdin(Stdio::null());
        if let Some(id_env) = &self.spec.id_env {
            command.env(id_env, format!("up{}-{name}", std::process::id()));
        }
        match &self.spec.output {
            ReplicaOutput::Prefixed => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
            ReplicaOutput::Files(dir) => {
                let path = dir.join(format!("{name}.log"));
                let io_error = |source| Error::Io {
                    what: format!("opening {}", path.display()),
                    source,
                };
                let file = std::fs::File::create(&path).map_err(io_error)?;
                let copy = file.try_clone().map_err(io_error)?;
                command.stdout(file).stderr(copy);
            }
        }
        crate::orphan::die_with_parent(&mut command);
        let mut child = command.spawn().map_err(|source| Error::Spawn {
            program: self.spec.program.display().to_string(),
            source,
        })?;
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            tokio::spawn(forward_lines(name.clone(), stream));
        }
        let (signals, signals_rx) = mpsc::unbounded_channel();
        tokio::spawn(own_child(child, index, signals_rx, self.exits_tx.clone()));
        tracing::debug!(replica = %name, "started");
        self.running.insert(
            index,
            Replica {
                signals,
                started: Instant::now(),
                kill_at: None,
            },
        );
        Ok(())
    }

    fn on_exit(&mut self, exit: Exit) {
        let status = match exit.status {
            Ok(status) => status.to_string(),
            Err(error) => format!("unknown status ({error})"),
        };
        if self.stopping.remove(&exit.index).is_some() {
            tracing::debug!("{}-{} stopped: {status}", self.spec.name, exit.index);
        } else if let Some(replica) = self.running.remove(&exit.index) {
            self.restarts += 1;
            tracing::warn!(
                "{}-{} exited on its own ({status}); replacing it",
                self.spec.name,
                exit.index
            );
            if replica.started.elapsed() < HEALTHY_RUN {
                self.back_off();
            } else {
                self.backoff.reset();
            }
        }
    }

    /// Delays the next start; several replicas crashing together wait once, not once each.
    fn back_off(&mut self) {
        if self.restart_at.is_none() {
            self.restart_at = Some(Instant::now() + self.backoff.next_delay());
        }
    }

    fn publish(&self) {
        self.counts.send_replace(ReplicaCounts {
            desired: self.desired,
            running: self.running.len() as u32,
            stopping: self.stopping.len() as u32,
            restarts: self.restarts,
        });
    }
}

/// Owns one child: waits for it, and signals its process group only until it is reaped, so a
/// signal can never reach a process that reused its pid.
async fn own_child(
    mut child: Child,
    index: u64,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    exits: mpsc::UnboundedSender<Exit>,
) {
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            Some(signal) = signals.recv() => {
                if let Some(pid) = child.id() {
                    // The child leads its own group (see orphan.rs).
                    let _ = killpg(Pid::from_raw(pid as i32), signal);
                }
            }
        }
    };
    let _ = exits.send(Exit { index, status });
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Longest line passed through; the rest of a longer one is cut.
const MAX_LINE: usize = 16 * 1024;

/// Passes a child's output on, line by line, prefixed with its name. Bytes that are not UTF-8
/// are shown replaced, never a reason to stop reading (the child would then get EPIPE).
async fn forward_lines(name: String, stream: impl AsyncRead + Unpin) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                line.truncate(MAX_LINE);
                let text = String::from_utf8_lossy(&line);
                output::line(format!("[{name}] {}", text.trim_end()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str, grace_period: Duration) -> ReplicaSpec {
        ReplicaSpec {
            name: "test".into(),
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            env: Vec::new(),
            output: ReplicaOutput::Prefixed,
            id_env: None,
            grace_period,
        }
    }

    async fn wait_for(
        supervisor: &Supervisor,
        within: Duration,
        done: impl Fn(ReplicaCounts) -> bool,
    ) -> ReplicaCounts {
        let deadline = Instant::now() + within;
        loop {
            let counts = supervisor.counts();
            if done(counts) {
                return counts;
            }
            assert!(
                Instant::now() < deadline,
                "still {counts:?} after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_replica_ignoring_sigterm_is_killed_after_the_grace_period() {
        let (trigger, shutdown) = Shutdown::new();
        let marks = tempfile::tempdir().unwrap();
        // Each shell leaves a mark once its trap is set: the sign the test waits for.
        let script = format!(
            "trap '' TERM; touch '{}'/$$; while :; do sleep 0.05; done",
            marks.path().display()
        );
        let (supervisor, done) =
            Supervisor::start(shell(&script, Duration::from_millis(300)), shutdown);
        supervisor.scale(2).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_dir(marks.path()).unwrap().count() < 2 {
            assert!(
                Instant::now() < deadline,
                "the shells did not set their trap"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        supervisor.scale(1).await.unwrap();
        let counts = supervisor.counts();
        assert_eq!((counts.running, counts.stopping), (1, 1));
        let started = Instant::now();
        wait_for(&supervisor, Duration::from_secs(5), |c| c.stopping == 0).await;
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "killed before its grace period"
        );
        assert_eq!(
            supervisor.counts().restarts,
            0,
            "a stop asked for is no crash"
        );
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), done)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn replicas_crashing_together_back_off_once() {
        let (_trigger, shutdown) = Shutdown::new();
        let (supervisor, _done) =
            Supervisor::start(shell("exit 3", Duration::from_secs(1)), shutdown);
        supervisor.scale(5).await.unwrap();
        wait_for(&supervisor, Duration::from_secs(3), |c| c.restarts >= 5).await;
        // One backoff of 1 s for the five of them, not 1 + 2 + 4 + 8 + 16 s.
        let counts = wait_for(&supervisor, Duration::from_secs(3), |c| c.restarts >= 10).await;
        assert!(
            counts.restarts < 15,
            "the second backoff (2 s) was skipped: {counts:?}"
        );
    }

    #[tokio::test]
    async fn shutdown_stops_every_replica_and_then_returns() {
        let (trigger, shutdown) = Shutdown::new();
        let (supervisor, done) =
            Supervisor::start(shell("sleep 30", Duration::from_secs(5)), shutdown);
        supervisor.scale(3).await.unwrap();
        assert_eq!(supervisor.counts().running, 3);
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), done)
            .await
            .unwrap()
            .unwrap();
        assert!(
            supervisor.scale(1).await.is_err(),
            "a stopped supervisor takes no request"
        );
    }
}
