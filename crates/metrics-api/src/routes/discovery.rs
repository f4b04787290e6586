//! Discovery: the API groups, and the metrics each version lists.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIGroup, APIGroupList, APIResourceList, GroupVersionForDiscovery,
};

use super::{Api, CUSTOM_VERSIONS};
use crate::shapes::{self, CUSTOM_GROUP, EXTERNAL_GROUP};

impl Api {
    pub(super) fn groups(&self) -> APIGroupList {
        APIGroupList {
            groups: [CUSTOM_GROUP, EXTERNAL_GROUP]
                .into_iter()
                .filter_map(|group| self.group(group))
                .collect(),
        }
    }

    pub(super) fn group(&self, group: &str) -> Option<APIGroup> {
        let versions: &[&str] = match group {
            CUSTOM_GROUP => &CUSTOM_VERSIONS,
            EXTERNAL_GROUP => &["v1beta1"],
            _ => return None,
        };
        let version = |version: &&str| GroupVersionForDiscovery {
            group_version: format!("{group}/{version}"),
            version: (*version).to_owned(),
        };
        Some(APIGroup {
            name: group.to_owned(),
            preferred_version: versions.first().map(version),
            versions: versions.iter().map(version).collect(),
            server_address_by_client_cidrs: None,
        })
    }

    pub(super) fn custom_discovery(&self, version: &str) -> APIResourceList {
        let mut entries = BTreeMap::new();
        for rule in &self.config.metrics {
            for object in &rule.objects {
                let namespaced = entries
                    .entry(format!("{}/{}", object.resource, rule.name))
                    .or_insert(false);
                *namespaced |= object.namespace.is_some();
            }
        }
        shapes::resource_list(
            &format!("{CUSTOM_GROUP}/{version}"),
            "MetricValueList",
            entries,
        )
    }

    pub(super) fn external_discovery(&self) -> APIResourceList {
        shapes::resource_list(
            &format!("{EXTERNAL_GROUP}/v1beta1"),
            "ExternalMetricValueList",
            self.config
                .metrics
                .iter()
                .filter(|rule| !rule.external_namespaces.is_empty())
                .map(|rule| (rule.name.clone(), true)),
        )
    }
}
