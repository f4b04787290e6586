//! The producer and consumer charts, in both modes, probe liveness and readiness apart:
//! liveness asks only whether the process serves (`/livez`, `ebb probe`), readiness whether
//! Redis answers (`/readyz`, `ebb probe --ready`). One check for both would restart every pod
//! on a wrong Redis password instead of holding them unready with the reason. The consumer
//! chart also names each consumer after its pod, in both modes.

use ebb_e2e::charts;
use ebb_e2e::daemon::temp_dir;
use ebb_testkit::control_plane;
use serde_json::{Value, json};

fn container(objects: &[Value]) -> &Value {
    let deployment = objects
        .iter()
        .find(|object| object["kind"] == "Deployment")
        .unwrap_or_else(|| panic!("no Deployment in {:?}", charts::identities(objects)));
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn producer_and_consumer_charts_probe_liveness_and_readiness_apart_in_both_modes() {
    let Some(bin) = control_plane::require(
        "producer_and_consumer_charts_probe_liveness_and_readiness_apart_in_both_modes",
    ) else {
        return;
    };
    let home = temp_dir("ebb-helm").unwrap();
    for chart in ["producer", "consumer"] {
        let normal = charts::render(&bin, home.path(), chart, "default", &[], &[]).unwrap();
        let normal = container(&normal);
        for (probe, path) in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz")] {
            assert_eq!(
                normal[probe]["httpGet"],
                json!({"path": path, "port": "http"}),
                "{chart} {probe}: {normal}"
            );
        }

        let host_network = charts::render(
            &bin,
            home.path(),
            chart,
            "default",
            &[],
            &["hostNetwork.enabled=true"],
        )
        .unwrap();
        let host_network = container(&host_network);
        for (probe, command) in [
            ("livenessProbe", json!(["/usr/local/bin/ebb", "probe"])),
            (
                "readinessProbe",
                json!(["/usr/local/bin/ebb", "probe", "--ready"]),
            ),
        ] {
            assert_eq!(
                host_network[probe]["exec"]["command"], command,
                "{chart} {probe}: {host_network}"
            );
        }
    }
}

/// A consumer is its pod: `EBB_CONSUMER_ID` comes from the pod's name in both modes, because
/// on the host network `$HOSTNAME` is the node's name, the same for every pod on it.
#[test]
fn the_consumer_is_named_after_its_pod_in_both_modes() {
    let Some(bin) = control_plane::require("the_consumer_is_named_after_its_pod_in_both_modes")
    else {
        return;
    };
    let home = temp_dir("ebb-helm").unwrap();
    for set in [
        &[][..],
        &["hostNetwork.enabled=true"][..],
        &[
            "redis.serverSecret.name=redis-address",
            "redis.serverSecret.key=url",
        ][..],
    ] {
        let objects = charts::render(&bin, home.path(), "consumer", "default", &[], set).unwrap();
        let env = &container(&objects)["env"];
        let ids: Vec<&Value> = env
            .as_array()
            .unwrap_or_else(|| panic!("{set:?}: no env in {env}"))
            .iter()
            .filter(|variable| variable["name"] == "EBB_CONSUMER_ID")
            .collect();
        assert_eq!(
            ids,
            [&json!({"name": "EBB_CONSUMER_ID",
                     "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})],
            "{set:?}: {env}"
        );
    }
}
