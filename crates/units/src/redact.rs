//! Redaction of credentials in addresses, before an address reaches an error, a log line, an
//! Event or a status. An address that failed to parse is exactly the one whose shape is unknown,
//! so redaction cannot rely on parsing it: it removes everything a URL's userinfo could be.

/// What replaces the userinfo (`user:password`) of an address.
pub const REDACTED: &str = "***";

/// `address` with its userinfo replaced by [`REDACTED`]: `redis://:pw@host:6379` becomes
/// `redis://***@host:6379`, `user:pw@host:6379` becomes `***@host:6379`. Everything before the
/// last `@` goes, because a malformed address may hold an unencoded `@`, `/` or space in its
/// password; what follows the last `@` is the host part, and is kept so the error still says
/// which address it is about. An address without `@` is returned as it is.
pub fn redact_address(address: &str) -> String {
    let (scheme, rest) = match address.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), address),
    };
    match rest.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}{REDACTED}@{host}"),
        None => address.to_owned(),
    }
}

/// `text` (a message from a library, which may quote a URL) with the userinfo of every URL in
/// it redacted: each `scheme://…@` up to the next whitespace or quote loses what is between.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .unwrap_or(after.len());
        let (token, tail) = after.split_at(end);
        match token.rsplit_once('@') {
            Some((_, host)) => {
                out.push_str(REDACTED);
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(token),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_never_survives() {
        for (given, shown) in [
            (
                "redis://:s3cret@redis-master:70000",
                "redis://***@redis-master:70000",
            ),
            ("redis://user:s3cret@h:1/0", "redis://***@h:1/0"),
            ("user:s3cret@h:1", "***@h:1"),
            ("redis://:s3@cr/et@h:1", "redis://***@h:1"),
            (
                "redis+cluster://:s3cret@a:1,b:2",
                "redis+cluster://***@a:1,b:2",
            ),
            ("redis-master:6379", "redis-master:6379"),
            ("http://prometheus:9090/x", "http://prometheus:9090/x"),
        ] {
            assert_eq!(redact_address(given), shown, "{given}");
        }
    }

    #[test]
    fn urls_inside_text_lose_their_userinfo() {
        assert_eq!(
            redact_urls("error sending request for url (http://u:s3cret@p:9090/api): refused"),
            "error sending request for url (http://***@p:9090/api): refused"
        );
        assert_eq!(
            redact_urls("a \"redis://:s3cret@h:1\" and https://h/x"),
            "a \"redis://***@h:1\" and https://h/x"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
    }
}
