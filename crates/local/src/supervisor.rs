//! Consumer replicas as child processes: the local stand-in for a Deployment.
//!
//! ```text
//!   scale(n) ─▶ Supervisor task ──spawn / SIGTERM──▶ replica processes
//!                  ▲   │                                   │ exit
//!                  │   └── ReplicaCounts (watch) ──▶ view  │
//!                  └──────── replace the crashed ◀─────────┘
//! ```
//!
//! Like a Deployment, the supervisor keeps `desired` replicas running: one that exits on its
//! own is replaced (with a crash-loop backoff), scale-down sends SIGTERM to the newest so they
//! finish the item in hand, and shutdown stops every child gracefully, then kills what is
//! still there after the grace period. Every child also gets `PR_SET_PDEATHSIG`, so even a
//! SIGKILLed `ebb up` leaves nothing running.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::error::{Error, Result};

/// What a replica is: the command line every replica runs, and where its output goes.
#[derive(Clone, Debug)]
pub struct ReplicaSpec {
    /// Replicas are named `<name>-<n>` in logs and file names.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub output: ReplicaOutput,
    /// How long a replica may take to stop after SIGTERM before it is killed.
    pub grace_period: Duration,
}

/// Where the replicas' stdout and stderr go.
#[derive(Clone, Debug)]
pub enum ReplicaOutput {
    /// Passed through, each line prefixed with the replica's name (plain log mode).
    Prefixed,
    /// One file per replica in this folder (the live view owns the terminal).
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
pub struct Supervisor {
    commands: mpsc::Sender<Request>,
    counts: watch::Receiver<ReplicaCounts>,
}

enum Request {
    Scale(u32, oneshot::Sender<()>),
    Pids(oneshot::Sender<Vec<u32>>),
}

impl Supervisor {
    /// Starts the supervisor task with 0 replicas. It runs until `shutdown` completes, then
    /// stops every child; the returned join handle completes once they are all gone.
    pub fn start(
        spec: ReplicaSpec,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(Self, tokio::task::JoinHandle<()>)> {
        if let ReplicaOutput::Files(dir) = &spec.output {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                what: format!("creating the replica log folder {}", dir.display()),
                source,
            })?;
        }
        let (commands, requests) = mpsc::channel(16);
        let (counts_tx, counts) = watch::channel(ReplicaCounts::default());
        let task = SupervisorTask::new(spec, counts_tx);
        let join = tokio::spawn(task.run(requests, shutdown));
        Ok((Self { commands, counts }, join))
    }

    /// Asks for `replicas` running processes. Returns once the missing ones are spawned and
    /// the extra ones signalled (or, after a crash, once the restart is scheduled), with
    /// [`counts`](Self::counts) up to date.
    pub async fn scale(&self, replicas: u32) -> Result<()> {
        let (done, applied) = oneshot::channel();
        self.commands
            .send(Request::Scale(replicas, done))
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

    /// Process ids of the running replicas, oldest first.
    pub async fn pids(&self) -> Result<Vec<u32>> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Request::Pids(reply))
            .await
            .map_err(|_| Error::SupervisorGone)?;
        answer.await.map_err(|_| Error::SupervisorGone)
    }
}

struct Replica {
    pid: u32,
    started: Instant,
}

struct Exit {
    index: u64,
    status: std::io::Result<ExitStatus>,
}

/// Quick crashes back off from 1 s up to 30 s; a replica that ran this long resets it.
const HEALTHY_RUN: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

struct SupervisorTask {
    spec: ReplicaSpec,
    counts: watch::Sender<ReplicaCounts>,
    desired: u32,
    running: BTreeMap<u64, Replica>,
    stopping: BTreeMap<u64, Replica>,
    next_index: u64,
    restarts: u64,
    backoff: Duration,
    not_before: Option<Instant>,
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
            backoff: Duration::ZERO,
            not_before: None,
            exits_tx,
            exits,
        }
    }

    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let restart_at = self.not_before;
            tokio::select! {
                () = &mut shutdown => break,
                request = requests.recv() => match request {
                    Some(Request::Scale(replicas, done)) => {
                        self.desired = replicas;
                        self.reconcile();
                        let _ = done.send(());
                    }
                    Some(Request::Pids(reply)) => {
                        let _ = reply.send(self.running.values().map(|r| r.pid).collect());
                    }
                    None => break,
                },
                Some(exit) = self.exits.recv() => {
                    self.on_exit(exit);
                    self.reconcile();
                }
                () = sleep_until_opt(restart_at) => {
                    self.not_before = None;
                    self.reconcile();
                }
            }
        }
        self.stop_all().await;
    }

    /// Brings the running count to `desired`: starts the missing (unless backing off after
    /// a crash), asks the newest extra ones to stop.
    fn reconcile(&mut self) {
        while self.running.len() > self.desired as usize {
            let (index, replica) = self.running.pop_last().expect("running is not empty");
            terminate(replica.pid);
            self.stopping.insert(index, replica);
        }
        let backing_off = self.not_before.is_some_and(|t| Instant::now() < t);
        while self.running.len() < self.desired as usize && !backing_off {
            match self.spawn() {
                Ok(()) => {}
                Err(error) => {
                    tracing::error!("{error}");
                    self.back_off();
                    break;
                }
            }
        }
        self.publish();
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
            .stdin(Stdio::null())
            .kill_on_drop(false);
        match &self.spec.output {
            ReplicaOutput::Prefixed => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
            ReplicaOutput::Files(dir) => {
                let path = dir.join(format!("{name}.log"));
                let file = std::fs::File::create(&path).map_err(|source| Error::Io {
                    what: format!("creating {}", path.display()),
                    source,
                })?;
                let copy = file.try_clone().map_err(|source| Error::Io {
                    what: format!("opening {}", path.display()),
                    source,
                })?;
                command.stdout(file).stderr(copy);
            }
        }
        crate::orphan::die_with_parent(&mut command);
        let mut child = command.spawn().map_err(|source| Error::Spawn {
            program: self.spec.program.display().to_string(),
            source,
        })?;
        let pid = child.id().expect("a child that was just spawned has a pid");
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(forward_lines(name.clone(), stdout));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_lines(name.clone(), stderr));
        }
        let exits = self.exits_tx.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = exits.send(Exit { index, status });
        });
        tracing::debug!(replica = %name, pid, "started");
        self.running.insert(
            index,
            Replica {
                pid,
                started: Instant::now(),
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
                self.backoff = Duration::ZERO;
            }
        }
    }

    fn back_off(&mut self) {
        self.backoff = (self.backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
        self.not_before = Some(Instant::now() + self.backoff);
    }

    fn publish(&self) {
        self.counts.send_replace(ReplicaCounts {
            desired: self.desired,
            running: self.running.len() as u32,
            stopping: self.stopping.len() as u32,
            restarts: self.restarts,
        });
    }

    /// SIGTERM to every child, then SIGKILL to those still there after the grace period.
    async fn stop_all(&mut self) {
        self.desired = 0;
        self.reconcile();
        let deadline = Instant::now() + self.spec.grace_period;
        while !self.stopping.is_empty() {
            match tokio::time::timeout_at(deadline, self.exits.recv()).await {
                Ok(Some(exit)) => {
                    self.stopping.remove(&exit.index);
                }
                Ok(None) => break,
                Err(_elapsed) => {
                    for (index, replica) in &self.stopping {
                        tracing::warn!(
                            "{}-{index} still running after {:?}; killing it",
                            self.spec.name,
                            self.spec.grace_period
                        );
                        let _ = kill(Pid::from_raw(replica.pid as i32), Signal::SIGKILL);
                    }
                    while !self.stopping.is_empty() {
                        match self.exits.recv().await {
                            Some(exit) => {
                                self.stopping.remove(&exit.index);
                            }
                            None => break,
                        }
                    }
                }
            }
            self.publish();
        }
        self.publish();
    }
}

fn terminate(pid: u32) {
    // The child may have exited a moment ago; its exit event is on its way.
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn forward_lines(name: String, stream: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("[{name}] {line}");
    }
}
