//! The Kubernetes name rules the configuration's names follow.

pub(super) fn is_dns_label(given: &str) -> bool {
    !given.is_empty()
        && given.len() <= 63
        && given
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !given.starts_with('-')
        && !given.ends_with('-')
}

/// A name usable as one URL path segment of the API.
pub(super) fn is_path_segment(given: &str) -> bool {
    !given.is_empty()
        && given != "*"
        && given
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// A Kubernetes label key: `[prefix/]name`.
pub fn is_label_key(given: &str) -> bool {
    let name = given.rsplit_once('/').map_or(given, |(_, name)| name);
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}
