//! What a request asks: its path, percent-decoded into segments as Go's `net/http` decodes
//! it, the route it belongs to, and the query parameters the API reads.

use crate::selector::Selector;
use crate::shapes::{CUSTOM_GROUP, EXTERNAL_GROUP};

use super::Reply;

/// A request's path, split at `/` into percent-decoded segments, as Go's `net/http` decodes
/// `URL.Path` before any handler sees it: clients escape characters such as the `*` of
/// "every object" (`%2A`, as client-go's custom metrics client sends it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    /// As received, for messages.
    pub raw: String,
    /// Decoded, for non-resource authorization (Kubernetes reviews the decoded path).
    pub decoded: String,
    segments: Vec<String>,
}

impl RequestPath {
    /// Decodes `raw`; an escape that is not `%` and two hex digits, or that decodes to
    /// something other than UTF-8, is a 400 as Go's server answers it.
    pub fn parse(raw: &str) -> Result<RequestPath, Reply> {
        let invalid =
            |reason: String| Reply::bad_request(format!("invalid URL path {raw:?}: {reason}"));
        let decode = |text: &str| -> Result<String, Reply> {
            let bytes = text.as_bytes();
            for (at, _) in text.match_indices('%') {
                let escape = bytes.get(at + 1..at + 3).unwrap_or(&bytes[at + 1..]);
                if escape.len() != 2 || !escape.iter().all(u8::is_ascii_hexdigit) {
                    return Err(invalid(format!(
                        "invalid escape {:?}",
                        String::from_utf8_lossy(&bytes[at..(at + 3).min(bytes.len())])
                    )));
                }
            }
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(std::borrow::Cow::into_owned)
                .map_err(|error| invalid(format!("not UTF-8 once decoded: {error}")))
        };
        let segments = raw
            .split('/')
            .filter(|part| !part.is_empty())
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RequestPath {
            raw: raw.to_owned(),
            decoded: decode(raw)?,
            segments,
        })
    }

    /// The decoded segments, empty ones (from `//` or a trailing `/`) left out.
    pub fn segments(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }
}

/// The route a path belongs to, for metrics and for deciding what needs authentication.
pub fn route_of(path: &RequestPath) -> &'static str {
    match path.raw.as_str() {
        "/healthz" | "/livez" | "/readyz" => "probe",
        raw if raw.starts_with("/openapi/") => "openapi",
        _ => match path.segments().as_slice() {
            ["apis"] | ["apis", _] | ["apis", _, _] => "discovery",
            ["apis", CUSTOM_GROUP, ..] => "custom_value",
            ["apis", EXTERNAL_GROUP, ..] => "external_value",
            _ => "other",
        },
    }
}

/// The query parameters the API reads.
#[derive(Default)]
pub(super) struct Params {
    pub(super) label_selector: Option<String>,
    pub(super) metric_label_selector: Option<String>,
}

pub(super) fn params(query: Option<&str>) -> Params {
    let mut params = Params::default();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "labelSelector" => params.label_selector = Some(value.into_owned()),
            "metricLabelSelector" => params.metric_label_selector = Some(value.into_owned()),
            _ => {}
        }
    }
    params
}

pub(super) fn selector(given: Option<&str>, parameter: &str) -> Result<Selector, Reply> {
    Selector::parse(given.unwrap_or_default())
        .map_err(|reason| Reply::bad_request(format!("invalid {parameter}: {reason}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_decoded_and_bad_escapes_refused() {
        let path = RequestPath::parse("/apis/custom.metrics.k8s.io/v1beta2//services/%2A/a%2fb/")
            .expect("a valid path");
        assert_eq!(
            path.segments(),
            [
                "apis",
                "custom.metrics.k8s.io",
                "v1beta2",
                "services",
                "*",
                "a/b"
            ]
        );
        assert_eq!(
            path.decoded,
            "/apis/custom.metrics.k8s.io/v1beta2//services/*/a/b/"
        );
        for (raw, reason) in [
            ("/apis/%zz", r#"invalid escape "%zz""#),
            ("/apis/%2", r#"invalid escape "%2""#),
            ("/apis/x%", r#"invalid escape "%""#),
            ("/apis/%C3%28", "not UTF-8 once decoded"),
        ] {
            let reply = RequestPath::parse(raw).expect_err(raw);
            let status: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!((reply.code, &status["reason"]), (400, &"BadRequest".into()));
            let message = status["message"].as_str().unwrap();
            assert!(message.contains(reason), "{raw}: {message}");
        }
    }
}
