//! The QueueScaler CRD can change safely: objects that were valid under `v1alpha1` as it was
//! committed still validate on a real kube-apiserver with today's CRD, the server stores them
//! as it did (defaults included), and the operator reads them as it did (source, Redis server,
//! target, scaler configuration, fallback, pause).
//!
//! The fixtures under `tests/fixtures/crd-compat/v1alpha1/` are frozen (their SHA-256s are
//! committed): a schema change adds fixtures, it never edits one. Beside each fixture,
//! `<name>.stored.json` is what the API server stored and `<name>.reading.txt` the
//! operator's reading of it; both are written once, when the fixture lands (see
//! CONTRIBUTING.md, "Changing the QueueScaler CRD").

mod crd_compat {
    pub mod fixtures;
    pub mod schema;
}

use std::collections::BTreeSet;

use crd_compat::fixtures::{self, Checked, Fixture};
use crd_compat::schema;
use ebb_operator::{QueueScaler, crd_yaml, reading};
use ebb_testkit::control_plane::Options;
use ebb_testkit::scenario::{QUEUE_SCALER_CRD, Scenario};

const VERSION: &str = "v1alpha1";

#[test]
fn every_spec_field_has_a_fixture() {
    let crd = schema::committed_crd();
    let spec_schema = &schema::version_schema(&crd, VERSION)["properties"]["spec"];
    let mut declared = BTreeSet::new();
    schema::declared(spec_schema, "spec", &mut declared);

    let mut set = BTreeSet::new();
    let mut unknown = Vec::new();
    for fixture in fixtures::load(VERSION) {
        let mut own = BTreeSet::new();
        schema::set(&fixture.object["spec"], "spec", &mut own);
        unknown.extend(
            own.difference(&declared)
                .map(|path| format!("{}: {path}", fixture.name)),
        );
        set.extend(own);
    }
    let missing: Vec<&String> = declared.difference(&set).collect();
    assert!(
        missing.is_empty(),
        "no {VERSION} fixture sets these spec fields of the committed CRD; add a fixture under {} that does:\n  {}",
        fixtures::directory(VERSION).display(),
        missing
            .iter()
            .map(|path| path.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    assert!(
        unknown.is_empty(),
        "fixtures set fields the committed {VERSION} schema does not declare (a removed or renamed field needs a new version with conversion):\n  {}",
        unknown.join("\n  ")
    );
}

#[test]
fn the_v1alpha1_fixtures_are_frozen() {
    let frozen = fixtures::frozen_sums(VERSION);
    let sums = fixtures::directory(VERSION).join("SHA256SUMS");
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for fixture in fixtures::load(VERSION) {
        let file = format!("{}.yaml", fixture.name);
        let sum = fixtures::sha256(fixture.text.as_bytes());
        match frozen.get(&file) {
            None => problems.push(format!(
                "{file} is not in {}: a new fixture is added with `sha256sum {file} >> SHA256SUMS`",
                sums.display()
            )),
            Some(expected) if *expected != sum => problems.push(format!(
                "{file} was edited (SHA-256 {sum}, frozen as {expected}): fixtures never change; add a new one instead"
            )),
            Some(_) => {}
        }
        seen.insert(file);
    }
    problems.extend(
        frozen
            .keys()
            .filter(|file| !seen.contains(*file))
            .map(|file| {
                format!(
                    "{file} is in {} but was deleted: fixtures stay",
                    sums.display()
                )
            }),
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What is compared of a stored object: its spec and annotations, as the server keeps them.
fn stored_view(stored: &serde_json::Value) -> String {
    let view = serde_json::json!({
        "annotations": stored["metadata"]["annotations"],
        "spec": stored["spec"],
    });
    serde_json::to_string_pretty(&view).unwrap() + "\n"
}

/// The operator's reading of `object`, as text; an error is a reading too (and fails below).
fn reading_text(object: &serde_json::Value) -> Result<String, String> {
    let scaler: QueueScaler = serde_json::from_value(object.clone())
        .map_err(|error| format!("not a QueueScaler: {error}"))?;
    let reading = reading(&scaler).map_err(|error| format!("the operator refuses it: {error}"))?;
    Ok(format!("{reading:#?}\n"))
}

/// Compares `actual` with the expectation `<fixture>.<suffix>`, noting what failed or was
/// written.
fn compare(
    fixture: &Fixture,
    suffix: &str,
    actual: &str,
    failures: &mut Vec<String>,
    written: &mut Vec<String>,
) {
    let path = fixture.expectation(suffix);
    match fixtures::check_expectation(&path, actual) {
        Checked::Same => {}
        Checked::Written => written.push(path.display().to_string()),
        Checked::Failed(why) => failures.push(why),
    }
}

/// Tells which expectations were written, then fails with every failure.
fn report(failures: Vec<String>, written: Vec<String>) {
    if !written.is_empty() {
        eprintln!(
            "wrote missing expectations (review and commit them):\n  {}",
            written.join("\n  ")
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The operator's serde defaults are the schema's, so a fixture as written, before the API
/// server fills in its defaults, already reads as the server's copy must.
#[test]
fn every_v1alpha1_fixture_as_written_reads_the_same() {
    let (mut failures, mut written) = (Vec::new(), Vec::new());
    for fixture in fixtures::load(VERSION) {
        match reading_text(&fixture.object) {
            Ok(text) => compare(&fixture, "reading.txt", &text, &mut failures, &mut written),
            Err(error) => failures.push(format!("{} as written: {error}", fixture.name)),
        }
    }
    report(failures, written);
}

/// Creates `fixture` in `scenario`'s namespace and checks what was stored and how the operator
/// reads it; returns the failures.
async fn check(scenario: &Scenario, fixture: &Fixture, written: &mut Vec<String>) -> Vec<String> {
    let namespace = scenario.namespace.as_str();
    // Strict field validation: a field the schema would prune is an error, not a warning.
    let created = scenario
        .control_plane
        .run(
            "kubectl",
            &["create", "--validate=strict", "-n", namespace, "-f", "-"],
            Some(&fixture.text),
        )
        .await;
    if let Err(error) = created {
        return vec![format!("{}: refused by today's CRD: {error}", fixture.name)];
    }
    let stored = match scenario
        .control_plane
        .get(QUEUE_SCALER_CRD, namespace, &fixture.name)
        .await
    {
        Ok(stored) => stored,
        Err(error) => return vec![format!("{}: reading it back: {error}", fixture.name)],
    };

    let mut failures = Vec::new();
    compare(
        fixture,
        "stored.json",
        &stored_view(&stored),
        &mut failures,
        written,
    );
    match reading_text(&stored) {
        Ok(text) => compare(fixture, "reading.txt", &text, &mut failures, written),
        Err(error) => failures.push(format!("{} as stored: {error}", fixture.name)),
    }
    failures
}

#[tokio::test(flavor = "multi_thread")]
async fn every_v1alpha1_fixture_still_validates_and_reads_the_same() {
    let Some(scenario) = Scenario::start(
        "every_v1alpha1_fixture_still_validates_and_reads_the_same",
        Options::default(),
        &crd_yaml(),
        "crd-compat-v1alpha1",
    )
    .await
    else {
        return;
    };
    let mut failures = Vec::new();
    let mut written = Vec::new();
    for fixture in fixtures::load(VERSION) {
        failures.extend(check(&scenario, &fixture, &mut written).await);
    }
    report(failures, written);
}
