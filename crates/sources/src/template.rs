//! Texts a source reads by (a Redis key, a PromQL query): fixed, as a QueueScaler writes
//! them, or templates whose `{{field}}`s each request fills in, as the metrics API's
//! configuration writes them (`{{key}}` from a label value, `jobs-{{name}}`). One scanner
//! reads `{{…}}` for checking and for filling in.

/// A checked template: every `{{` is closed, every field is known to whoever checked it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Template(String);

/// A fixed text, or a template filled in later.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Text {
    Fixed(String),
    Template(Template),
}

/// One piece of a template's text.
enum Piece<'t> {
    Literal(&'t str),
    /// A field's name, trimmed (`{{ name }}` is `name`).
    Field(&'t str),
}

/// The one `{{…}}` scanner: the pieces of `text`, or why it is no template.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        pieces.push(Piece::Literal(&rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("a `{{` is not closed by `}}`".to_owned());
        };
        pieces.push(Piece::Field(after[..end].trim()));
        rest = &after[end + 2..];
    }
    pieces.push(Piece::Literal(rest));
    Ok(pieces)
}

impl Template {
    /// `text` as a template whose fields are among `known`; the error says what is wrong,
    /// for the caller to prefix with the field it read `text` from.
    pub fn parse(text: &str, known: &[&str]) -> Result<Template, String> {
        for piece in pieces(text)? {
            if let Piece::Field(field) = piece
                && !known.contains(&field)
            {
                return Err(format!(
                    "unknown template field {{{{{field}}}}} (known: {})",
                    known
                        .iter()
                        .map(|name| format!("{{{{{name}}}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(Template(text.to_owned()))
    }

    /// The fields it uses, in order (repeats included).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        pieces(&self.0)
            .expect("templates are checked when parsed")
            .into_iter()
            .filter_map(|piece| match piece {
                Piece::Field(field) => Some(field),
                Piece::Literal(_) => None,
            })
    }

    /// The text with each field's value filled in (an unknown field is empty), every
    /// character of a value for which `escaped` is true preceded by a backslash.
    pub fn render(&self, fields: &[(&str, &str)], escaped: impl Fn(char) -> bool) -> String {
        let mut rendered = String::with_capacity(self.0.len());
        for piece in pieces(&self.0).expect("templates are checked when parsed") {
            match piece {
                Piece::Literal(text) => rendered.push_str(text),
                Piece::Field(field) => {
                    let value = fields
                        .iter()
                        .find(|(name, _)| *name == field)
                        .map_or("", |(_, value)| value);
                    for char in value.chars() {
                        if escaped(char) {
                            rendered.push('\\');
                        }
                        rendered.push(char);
                    }
                }
            }
        }
        rendered
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Text {
    /// The text itself, once fixed.
    pub fn fixed(&self) -> Option<&str> {
        match self {
            Text::Fixed(text) => Some(text),
            Text::Template(_) => None,
        }
    }

    /// As written: the fixed text, or the template.
    pub fn as_str(&self) -> &str {
        match self {
            Text::Fixed(text) => text,
            Text::Template(template) => template.as_str(),
        }
    }

    /// Fixed, with `fields` filled in (see [`Template::render`]).
    pub fn resolve(&self, fields: &[(&str, &str)], escaped: impl Fn(char) -> bool) -> Text {
        match self {
            Text::Fixed(_) => self.clone(),
            Text::Template(template) => Text::Fixed(template.render(fields, escaped)),
        }
    }
}

/// For [`Template::render`]: values go in as they are (a Redis key).
pub fn verbatim(_: char) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked_filled_and_escaped() {
        let known = ["namespace", "name", "key"];
        let template = Template::parse(
            r#"sum(x{namespace="{{namespace}}",service="{{ name }}",key="{{key}}"})"#,
            &known,
        )
        .unwrap();
        assert_eq!(
            template.fields().collect::<Vec<_>>(),
            ["namespace", "name", "key"]
        );
        assert_eq!(
            template.render(
                &[("namespace", "default"), ("name", "svc"), ("key", r#"a"b"#)],
                |c| c == '"'
            ),
            r#"sum(x{namespace="default",service="svc",key="a\"b"})"#
        );
        assert_eq!(
            Template::parse("jobs-{{kind}}", &["name", "namespace"]).unwrap_err(),
            "unknown template field {{kind}} (known: {{name}}, {{namespace}})"
        );
        assert_eq!(
            Template::parse("jobs-{{name", &known).unwrap_err(),
            "a `{{` is not closed by `}}`"
        );
        let key = Text::Template(Template::parse("{{key}}", &known).unwrap());
        assert_eq!(
            key.resolve(&[("key", "a\"b")], verbatim),
            Text::Fixed("a\"b".into())
        );
    }
}
