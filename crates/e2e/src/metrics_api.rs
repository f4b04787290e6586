//! `ebb metrics-api` as the cluster runs it from `helm/charts/metrics-api`: the chart installed
//! on the control plane (APIServices with the chart's caBundle, RBAC, Service), and the server
//! itself a local process that the Service's ClusterIP reaches, serving with the chart's
//! certificate and authenticated as the chart's ServiceAccount — so the caBundle and the RBAC
//! are the ones checked, not an insecure shortcut or the admin's rights.
//!
//! ```text
//!  HPA ─▶ kube-apiserver ─(front-proxy cert, X-Remote-*)─▶ Service monitoring/metrics-api
//!                                                          ClusterIP 127.x.y.z:443 = this process
//!  this process ─(ServiceAccount token)─▶ kube-apiserver: the front-proxy CA ConfigMap,
//!                                                          SubjectAccessReviews
//!  this process ─(one pipelined read per second)─▶ Redis
//! ```
//!
//! As for prometheus-adapter ([`crate::adapter`]), the pod stays Pending (no kubelet) and a
//! placeholder EndpointSlice (240.0.0.1, never dialled) satisfies the availability check.
//!
//! [`MetricsCheck`] runs `tools/metrics-check`, the HPA's own Go client library, as the oracle
//! of the responses' shapes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ebb_testkit::control_plane::ControlPlane;
use serde_json::{Value, json};

use crate::daemon::{Process, free_port};
use crate::load::Tls;
use crate::recorder::Recorder;
use crate::{Error, Result, charts};

pub const NAMESPACE: &str = "monitoring";
/// The release, its Service, ServiceAccount and TLS Secret (`<release>-tls`).
pub const RELEASE: &str = "metrics-api";
/// The chart's `service.port`: what the kube-apiserver dials on the ClusterIP.
const SERVICE_PORT: u16 = 443;
/// The chart's container port named `https`.
const CONTAINER_PORT: u16 = 6443;
/// The server's port when a [`Recorder`] takes the Service's.
const RECORDED_SERVER_PORT: u16 = 8443;
/// The name the chart's serving certificate is made for.
pub const SERVICE_DNS_NAME: &str = "metrics-api.monitoring.svc";
/// The three APIServices the chart registers by default.
pub const API_SERVICES: [&str; 3] = [
    "v1beta1.custom.metrics.k8s.io",
    "v1beta2.custom.metrics.k8s.io",
    "v1beta1.external.metrics.k8s.io",
];
/// The identity the server authenticates with (the chart's ServiceAccount).
pub const SERVICE_ACCOUNT: &str = "system:serviceaccount:monitoring:metrics-api";

/// The server, registered and Available; stopped on drop.
#[derive(Debug)]
pub struct MetricsApi {
    /// What the kube-apiserver sent, when started with `record`.
    pub recorder: Option<Recorder>,
    daemon: Option<Process>,
    command: Vec<String>,
    /// The Service's ClusterIP, the address the server binds.
    pub cluster_ip: String,
    /// The server's HTTPS port (443, the Service's, unless a recorder took that).
    pub secure_port: u16,
    /// Plain-HTTP port of its own /metrics.
    pub metrics_port: u16,
    /// Its serving certificate's CA (the chart's generated CA, also the APIServices' caBundle).
    pub ca_file: PathBuf,
}

/// The placeholder endpoint that makes the chart's Service in `namespace` look served.
fn placeholder_endpoint(namespace: &str) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{RELEASE}-placeholder"),
            "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": RELEASE,
                "endpointslice.kubernetes.io/managed-by": "ebb-e2e",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{ "addresses": ["240.0.0.1"], "conditions": { "ready": true } }],
        "ports": [{ "name": "https", "port": CONTAINER_PORT, "protocol": "TCP" }],
    })
}

fn write(path: &Path, contents: &[u8]) -> Result<()> {
    std::fs::write(path, contents).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// A kubeconfig for `server` authenticating with a bearer `token`, trusting `ca`.
fn token_kubeconfig(server: &str, ca: &Path, token: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Config
clusters:
  - name: cluster
    cluster: {{server: "{server}", certificate-authority: "{ca}"}}
users:
  - name: user
    user: {{token: "{token}"}}
contexts:
  - name: context
    context: {{cluster: cluster, user: user}}
current-context: context
"#,
        ca = ca.display()
    )
}

/// `base64 -d` of a Secret's value, as bytes.
fn decode_base64(encoded: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|error| Error::Unexpected(format!("not base64 ({error}): {encoded:.40}")))
}

impl MetricsApi {
    /// Installs the chart (release `metrics-api` in `monitoring`, with `set`), then starts
    /// `ebb` (the binary at `ebb`) as its backend with `extra_args`, and waits until every
    /// enabled APIService is Available. With `record`, a [`Recorder`] takes the Service's
    /// address and the server listens behind it.
    pub async fn start(
        control_plane: &ControlPlane,
        ebb: &Path,
        redis_server: &str,
        set: &[&str],
        extra_args: &[&str],
        record: bool,
        dir: &Path,
    ) -> Result<Self> {
        control_plane
            .apply(
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
                    .to_string(),
            )
            .await?;
        charts::install_as(control_plane, RELEASE, "metrics-api", NAMESPACE, set).await?;
        Self::serve_release(
            control_plane,
            NAMESPACE,
            ebb,
            redis_server,
            set,
            extra_args,
            record,
            dir,
        )
        .await
    }

    /// Starts `ebb` as the backend of a release `metrics-api` already installed in `namespace`
    /// (by [`MetricsApi::start`], or by the dojo's `scripts/deploy-metrics-api.sh`) with `set`,
    /// and waits until every enabled APIService is Available.
    #[allow(clippy::too_many_arguments)]
    pub async fn serve_release(
        control_plane: &ControlPlane,
        namespace: &str,
        ebb: &Path,
        redis_server: &str,
        set: &[&str],
        extra_args: &[&str],
        record: bool,
        dir: &Path,
    ) -> Result<Self> {
        control_plane
            .apply(&placeholder_endpoint(namespace).to_string())
            .await?;
        let service = control_plane.get("service", namespace, RELEASE).await?;
        let cluster_ip = service["spec"]["clusterIP"]
            .as_str()
            .unwrap_or_default()
            .to_owned();

        // The chart's serving certificate, as the pod would mount it.
        let secret = control_plane
            .get("secret", namespace, &format!("{RELEASE}-tls"))
            .await?;
        let mut files = Vec::new();
        for key in ["tls.crt", "tls.key", "ca.crt"] {
            let encoded = secret["data"][key]
                .as_str()
                .ok_or_else(|| Error::Unexpected(format!("no {key} in Secret {RELEASE}-tls")))?;
            let path = dir.join(format!("serving-{key}"));
            write(&path, &decode_base64(encoded)?)?;
            files.push(path);
        }

        // Authenticated as the chart's ServiceAccount: its RBAC is what is tested.
        let token = control_plane
            .kubectl(&["create", "token", RELEASE, "-n", namespace, "--duration=2h"])
            .await?;
        let kubeconfig = dir.join("metrics-api.kubeconfig");
        write(
            &kubeconfig,
            token_kubeconfig(
                &control_plane.apiserver_url,
                &control_plane.pki.join("ca.crt"),
                token.trim(),
            )
            .as_bytes(),
        )?;

        let metrics_port = free_port();
        let secure_port = if record {
            RECORDED_SERVER_PORT
        } else {
            SERVICE_PORT
        };
        let recorder = if record {
            let front_proxy = (
                control_plane.pki.join("front-proxy-client.crt"),
                control_plane.pki.join("front-proxy-client.key"),
            );
            let listen = format!("{cluster_ip}:{SERVICE_PORT}")
                .parse()
                .map_err(|_| Error::Unexpected(format!("ClusterIP {cluster_ip}")))?;
            Some(
                Recorder::start(
                    listen,
                    &files[0],
                    &files[1],
                    &control_plane.pki.join("front-proxy-ca.crt"),
                    format!("https://{cluster_ip}:{secure_port}"),
                    Tls {
                        ca: Some(files[2].clone()),
                        server_name: Some(format!("{RELEASE}.{namespace}.svc")),
                        client_cert: Some(front_proxy),
                    },
                )
                .await?,
            )
        } else {
            None
        };
        let mut command = vec![
            ebb.display().to_string(),
            "metrics-api".into(),
            format!("--bind-address={cluster_ip}"),
            format!("--secure-port={secure_port}"),
            format!("--metrics-port={metrics_port}"),
            format!("--tls-cert-file={}", files[0].display()),
            format!("--tls-private-key-file={}", files[1].display()),
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--redis-server={redis_server}"),
        ];
        command.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
        let mut server = Self {
            recorder,
            secure_port,
            daemon: None,
            command,
            cluster_ip,
            metrics_port,
            ca_file: files[2].clone(),
        };
        server.spawn()?;
        let enabled: Vec<&str> = API_SERVICES
            .into_iter()
            .filter(|name| !set.iter().any(|s| disables(s, name)))
            .collect();
        for name in enabled {
            server.wait_available(control_plane, name).await?;
        }
        Ok(server)
    }

    fn spawn(&mut self) -> Result<()> {
        let mut command = Command::new(&self.command[0]);
        command.args(&self.command[1..]).env("EBB_LOG", "info");
        self.daemon = Some(Process::spawn_quiet("ebb-metrics-api", &mut command)?);
        Ok(())
    }

    /// Stops the server (SIGKILL) and starts it again with the same flags.
    pub fn restart(&mut self) -> Result<()> {
        self.daemon = None;
        self.spawn()
    }

    pub fn daemon(&mut self) -> &mut Process {
        self.daemon.as_mut().expect("the server runs")
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.daemon
            .as_ref()
            .map(|daemon| daemon.logs().join("\n"))
            .unwrap_or_default()
    }

    /// `https://<ClusterIP>:<port>`, the server straight (not through the kube-apiserver).
    pub fn url(&self, path: &str) -> String {
        format!("https://{}:{}{path}", self.cluster_ip, self.secure_port)
    }

    /// `http://<ClusterIP>:<metrics port>/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://{}:{}/metrics", self.cluster_ip, self.metrics_port)
    }

    /// The server's own metrics, as Prometheus text.
    pub async fn scrape(&self) -> Result<String> {
        let url = self.metrics_url();
        let scrape = |source| Error::Scrape {
            url: url.clone(),
            source,
        };
        reqwest::get(&url)
            .await
            .map_err(scrape)?
            .text()
            .await
            .map_err(scrape)
    }

    /// The server's own `ebb_metrics_api_requests_total`, as (route, code) → count.
    pub async fn requests_by_route_and_code(
        &self,
    ) -> Result<std::collections::BTreeMap<(String, u16), u64>> {
        let text = self.scrape().await?;
        let mut counts = std::collections::BTreeMap::new();
        for line in text.lines() {
            let Some(sample) = line.strip_prefix("ebb_metrics_api_requests_total{") else {
                continue;
            };
            let unexpected = || Error::Unexpected(format!("a request count line: {line}"));
            let (labels, value) = sample.split_once("} ").ok_or_else(unexpected)?;
            let label = |name: &str| {
                labels
                    .split(',')
                    .find_map(|pair| pair.strip_prefix(&format!("{name}=\"")))
                    .and_then(|value| value.strip_suffix('"'))
                    .map(str::to_owned)
            };
            let route = label("route").ok_or_else(unexpected)?;
            let code = label("code")
                .and_then(|code| code.parse().ok())
                .ok_or_else(unexpected)?;
            let count = value.trim().parse().map_err(|_| unexpected())?;
            counts.insert((route, code), count);
        }
        Ok(counts)
    }

    /// Waits (up to 90 s) until the APIService `name` is Available, failing early with the
    /// server's log if it exits.
    pub async fn wait_available(&mut self, control_plane: &ControlPlane, name: &str) -> Result<()> {
        let result = control_plane
            .wait_for(
                &format!("APIService {name} to be Available"),
                Duration::from_secs(90),
                || {
                    let running = self.daemon().check_running().map_err(|e| e.to_string());
                    async move {
                        running?;
                        let condition = available_condition(control_plane, name).await?;
                        if condition["status"] == "True" {
                            Ok(Some(()))
                        } else {
                            Err(format!("condition Available = {condition}"))
                        }
                    }
                },
            )
            .await;
        if let Err(error) = result {
            self.daemon().check_running()?;
            return Err(Error::NotReady {
                what: format!("ebb metrics-api on {}:{SERVICE_PORT}", self.cluster_ip),
                last: error.to_string(),
                tail: self.daemon().tail(30),
            });
        }
        Ok(())
    }
}

/// Whether the `--set` assignment `set` switches the APIService `name` off.
fn disables(set: &str, name: &str) -> bool {
    let key = match name {
        "v1beta1.custom.metrics.k8s.io" => "customV1beta1",
        "v1beta2.custom.metrics.k8s.io" => "customV1beta2",
        _ => "externalV1beta1",
    };
    set == format!("apiServices.{key}.enabled=false")
}

/// The `Available` condition of the APIService `name` (Null when absent).
pub async fn available_condition(
    control_plane: &ControlPlane,
    name: &str,
) -> Result<Value, String> {
    let api_service = control_plane
        .kubectl_json(&["get", "apiservice", name])
        .await
        .map_err(|error| error.to_string())?;
    Ok(api_service["status"]["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Available"))
        .cloned()
        .unwrap_or(Value::Null))
}

/// `tools/metrics-check`: the HPA's client library reading the metrics APIs through the
/// kube-apiserver, plus strict decoding of every body into the upstream Go types.
pub struct MetricsCheck<'a> {
    control_plane: &'a ControlPlane,
}

/// One run of the oracle: its JSON document (`result`, or `error`/`code`/`reason`, and
/// `responses`), and whether it succeeded.
#[derive(Debug, Clone)]
pub struct Checked {
    pub ok: bool,
    pub document: Value,
    pub stderr: String,
}

impl Checked {
    /// The decoded result, or a panic with the whole document.
    pub fn result(&self) -> &Value {
        assert!(self.ok, "metrics-check failed: {}", self.document);
        &self.document["result"]
    }

    /// The status code of the failure (0 when it succeeded or failed without a Status).
    pub fn code(&self) -> i64 {
        self.document["code"].as_i64().unwrap_or(0)
    }
}

impl<'a> MetricsCheck<'a> {
    pub fn new(control_plane: &'a ControlPlane) -> Self {
        Self { control_plane }
    }

    /// The binary, built by `scripts/control-plane.sh build` next to kubectl.
    pub fn path(&self) -> PathBuf {
        self.control_plane.bin.join("metrics-check")
    }

    /// `metrics-check <args…>` against the control plane.
    pub async fn run(&self, args: &[&str]) -> Result<Checked> {
        let output = self
            .control_plane
            .command("metrics-check")
            .args(args)
            .output()
            .await
            .map_err(|source| Error::Spawn {
                program: self.path().display().to_string(),
                source,
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let document: Value = serde_json::from_str(&stdout).map_err(|_| {
            Error::Unexpected(format!(
                "metrics-check {args:?} ({}) printed no JSON: {stdout}{stderr}",
                output.status
            ))
        })?;
        Ok(Checked {
            ok: output.status.success(),
            document,
            stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn secret_values_decode_as_standard_base64() {
        assert_eq!(decode_base64("aGk+Pz8/").unwrap(), b"hi>???");
        assert!(decode_base64("not base64!").is_err());
    }
}
