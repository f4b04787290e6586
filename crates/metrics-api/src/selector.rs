//! Kubernetes label selectors as written in a query string (`key=padok`, `key in (a,b)`,
//! `tier!=low`, `key`, `!key`), parsed and matched; anything else is a 400 naming the part.

use std::collections::BTreeMap;

/// A parsed selector: every requirement must hold. Empty: matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Selector {
    /// Parses `given`; the error says which part is wrong.
    pub fn parse(given: &str) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(given)? {
            let part = part.trim();
            if part.is_empty() {
                if given.trim().is_empty() {
                    continue;
                }
                return Err(format!("{given:?}: an empty requirement"));
            }
            requirements.push(requirement(part)?);
        }
        Ok(Selector(requirements))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|requirement| match requirement {
            Requirement::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(key, values) => !labels.get(key).is_some_and(|v| values.contains(v)),
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::DoesNotExist(key) => !labels.contains_key(key),
        })
    }

    /// The values the selector names for `label` by equality or `in`: the only values it
    /// can match when it has such a requirement (`None`: no such requirement).
    pub fn named_values(&self, label: &str) -> Option<Vec<String>> {
        let mut named: Option<Vec<String>> = None;
        for requirement in &self.0 {
            if let Requirement::In(key, values) = requirement
                && key == label
            {
                named = Some(match named {
                    None => values.clone(),
                    Some(before) => before.into_iter().filter(|v| values.contains(v)).collect(),
                });
            }
        }
        named
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(given: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (at, char) in given.char_indices() {
        match char {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("{given:?}: a `)` without `(`"))?;
            }
            ',' if depth == 0 => {
                parts.push(&given[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("{given:?}: a `(` is not closed"));
    }
    parts.push(&given[start..]);
    Ok(parts)
}

fn requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(label_key(key.trim(), part)?));
    }
    for (operator, negated) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = part.split_once(operator) {
            let key = label_key(key.trim(), part)?;
            let value = label_value(value.trim(), part)?;
            return Ok(if negated {
                Requirement::NotIn(key, vec![value])
            } else {
                Requirement::In(key, vec![value])
            });
        }
    }
    if part.contains(['<', '>']) {
        return Err(format!(
            "{part:?}: `<` and `>` are not supported in this selector"
        ));
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    match words.as_slice() {
        [key] => Ok(Requirement::Exists(label_key(key, part)?)),
        [key, rest] => {
            let rest = rest.trim_start();
            let (negated, set) = if let Some(set) = rest.strip_prefix("notin") {
                (true, set)
            } else if let Some(set) = rest.strip_prefix("in") {
                (false, set)
            } else {
                return Err(format!(
                    "{part:?}: expected `in`, `notin`, `=`, `==` or `!=`"
                ));
            };
            let set = set.trim();
            let inner = set
                .strip_prefix('(')
                .and_then(|set| set.strip_suffix(')'))
                .ok_or_else(|| format!("{part:?}: the set must be in parentheses"))?;
            let values = inner
                .split(',')
                .map(|value| label_value(value.trim(), part))
                .collect::<Result<Vec<_>, _>>()?;
            let key = label_key(key, part)?;
            Ok(if negated {
                Requirement::NotIn(key, values)
            } else {
                Requirement::In(key, values)
            })
        }
        _ => Err(format!("{part:?}: an empty requirement")),
    }
}

fn label_key(key: &str, part: &str) -> Result<String, String> {
    if crate::config::is_label_key(key) {
        Ok(key.to_owned())
    } else {
        Err(format!("{part:?}: {key:?} is not a label name"))
    }
}

fn label_value(value: &str, part: &str) -> Result<String, String> {
    let valid = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && (value.is_empty()
            || (value.starts_with(|c: char| c.is_ascii_alphanumeric())
                && value.ends_with(|c: char| c.is_ascii_alphanumeric())));
    if valid {
        Ok(value.to_owned())
    } else {
        Err(format!("{part:?}: {value:?} is not a label value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn forms_parse_and_match() {
        let padok = labels(&[("key", "padok")]);
        let other = labels(&[("key", "other")]);
        for (given, on_padok, on_other, on_none) in [
            ("", true, true, true),
            ("key=padok", true, false, false),
            ("key==padok", true, false, false),
            ("key!=padok", false, true, true),
            ("key in (padok, x)", true, false, false),
            ("key notin (padok)", false, true, true),
            ("key", true, true, false),
            ("!key", false, false, true),
            ("key=padok,key", true, false, false),
        ] {
            let selector = Selector::parse(given).unwrap_or_else(|e| panic!("{given}: {e}"));
            assert_eq!(selector.matches(&padok), on_padok, "{given} on padok");
            assert_eq!(selector.matches(&other), on_other, "{given} on other");
            assert_eq!(
                selector.matches(&BTreeMap::new()),
                on_none,
                "{given} on nothing"
            );
        }
    }

    #[test]
    fn named_values_intersect() {
        let selector = Selector::parse("key in (a,b,c),key!=b,key in (b,c)").unwrap();
        assert_eq!(
            selector.named_values("key"),
            Some(vec!["b".into(), "c".into()])
        );
        assert_eq!(Selector::parse("key!=a").unwrap().named_values("key"), None);
    }

    #[test]
    fn malformed_selectors_are_refused_with_the_part() {
        for (given, reason) in [
            (
                "key=pa dok",
                "\"key=pa dok\": \"pa dok\" is not a label value",
            ),
            ("key in (a", "\"key in (a\": a `(` is not closed"),
            ("=x", "\"=x\": \"\" is not a label name"),
            (
                "key>3",
                "\"key>3\": `<` and `>` are not supported in this selector",
            ),
            ("key=a,,b=c", "\"key=a,,b=c\": an empty requirement"),
            (
                "key within (a)",
                "\"key within (a)\": expected `in`, `notin`, `=`, `==` or `!=`",
            ),
        ] {
            assert_eq!(Selector::parse(given), Err(reason.to_owned()), "{given}");
        }
    }
}
