//! The dojo's Helm values (`helm/values/*.yaml`, `helm/charts/*/values.yaml`): the e2e
//! pipeline takes its settings from them, so the files and the test cannot drift apart.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Error, Result};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `helm/values/<name>.yaml` or any YAML file, as JSON values.
#[derive(Debug, Clone)]
pub struct Values {
    path: PathBuf,
    root: Value,
}

impl Values {
    /// `helm/values/<name>.yaml`.
    pub fn dojo(name: &str) -> Result<Self> {
        Self::load(&repo_root().join("helm/values").join(format!("{name}.yaml")))
    }

    /// `helm/charts/<chart>/values.yaml`.
    pub fn chart_defaults(chart: &str) -> Result<Self> {
        Self::load(
            &repo_root()
                .join("helm/charts")
                .join(chart)
                .join("values.yaml"),
        )
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        let root = serde_saphyr::from_str(&text).map_err(|source| Error::Yaml {
            path: path.into(),
            source: Box::new(source),
        })?;
        Ok(Self {
            path: path.into(),
            root,
        })
    }

    /// The value at a dotted path (`prometheus.prometheusSpec.scrapeInterval`), or a clear error.
    pub fn get(&self, dotted: &str) -> Result<&Value> {
        dotted
            .split('.')
            .try_fold(&self.root, |value, key| value.get(key))
            .ok_or_else(|| Error::MissingValue {
                path: self.path.clone(),
                what: format!("a value at `{dotted}`"),
            })
    }

    /// The string at a dotted path.
    pub fn string(&self, dotted: &str) -> Result<String> {
        self.get(dotted)?
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::MissingValue {
                path: self.path.clone(),
                what: format!("a string at `{dotted}`"),
            })
    }

    /// `env:` entries (`- name: X\n  value: y`) at a dotted path, as pairs.
    pub fn env_list(&self, dotted: &str) -> Result<Vec<(String, String)>> {
        let entries = self
            .get(dotted)?
            .as_array()
            .ok_or_else(|| Error::MissingValue {
                path: self.path.clone(),
                what: format!("a list of {{name, value}} at `{dotted}`"),
            })?;
        entries
            .iter()
            .map(
                |entry| match (entry["name"].as_str(), entry["value"].as_str()) {
                    (Some(name), Some(value)) => Ok((name.to_owned(), value.to_owned())),
                    _ => Err(Error::MissingValue {
                        path: self.path.clone(),
                        what: format!("string `name` and `value` in every entry of `{dotted}`"),
                    }),
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dojo_values_hold_the_solution_settings() {
        let stack = Values::dojo("kube-prometheus-stack").unwrap();
        assert_eq!(
            stack
                .string("prometheus.prometheusSpec.scrapeInterval")
                .unwrap(),
            "5s"
        );
        let exporter = Values::dojo("prometheus-redis-exporter").unwrap();
        assert_eq!(
            exporter.env_list("env").unwrap(),
            [(
                "REDIS_EXPORTER_CHECK_SINGLE_KEYS".to_owned(),
                "padok".to_owned()
            )]
        );
        let adapter = Values::dojo("prometheus-adapter").unwrap();
        assert_eq!(
            adapter.get("rules.custom").unwrap()[0]["metricsQuery"],
            "<<.Series>>{<<.LabelMatchers>>}"
        );
    }

    #[test]
    fn invalid_yaml_names_the_file_and_keeps_the_parser_error() {
        let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
        std::fs::write(file.path(), "a: [1, 2\nb: {").unwrap();
        let error = Values::load(file.path()).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "{}: invalid YAML: error: line 2 column 2: ",
                file.path().display()
            )),
            "{message}"
        );
        assert!(std::error::Error::source(&error).is_some(), "{error:?}");
    }

    #[test]
    fn a_missing_value_names_the_file_and_the_path() {
        let stack = Values::dojo("kube-prometheus-stack").unwrap();
        let message = stack.string("prometheus.nope").unwrap_err().to_string();
        assert!(
            message.ends_with("kube-prometheus-stack.yaml: expected a value at `prometheus.nope`"),
            "{message}"
        );
    }
}
