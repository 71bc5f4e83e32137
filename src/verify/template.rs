//! The `signed` template of header-carried HMAC schemes: literal text,
//! `{body}` and `{header:NAME}` parts, parsed once at start-up and fed to the
//! MAC chunk by chunk, so the signed content is never assembled in memory.

use http::{HeaderMap, HeaderName, HeaderValue};

/// One piece of the signed content.
#[derive(Debug)]
enum Part {
    /// Text copied as is.
    Literal(Box<[u8]>),
    /// The raw request body.
    Body,
    /// The raw value of a request header (empty when absent).
    Header(HeaderName),
}

/// What a sender signs, e.g. `v0:{header:x-slack-request-timestamp}:{body}`.
#[derive(Debug)]
pub(super) struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses a template; the message says what is wrong, for the `hmac.signed` key.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest.as_bytes()[open] == b'}' {
                return Err("has a `}` without a matching `{`".into());
            }
            let close = rest[open..].find('}').ok_or("has a `{` without a closing `}`")? + open;
            push_literal(&mut parts, &rest[..open]);
            parts.push(placeholder(&rest[open + 1..close])?);
            rest = &rest[close + 1..];
        }
        push_literal(&mut parts, rest);
        if !parts.iter().any(|part| matches!(part, Part::Body)) {
            return Err("must contain {body}, otherwise the body would not be authenticated".into());
        }
        Ok(Self { parts })
    }

    /// The signed content of a request, in order, as borrowed chunks.
    pub(super) fn chunks<'a>(&'a self, headers: &'a HeaderMap, body: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
        self.parts.iter().map(move |part| match part {
            Part::Literal(text) => &text[..],
            Part::Body => body,
            Part::Header(name) => headers.get(name).map_or(&[][..], HeaderValue::as_bytes),
        })
    }

    /// The headers the template reads.
    pub(super) fn headers(&self) -> impl Iterator<Item = &HeaderName> {
        self.parts.iter().filter_map(|part| match part {
            Part::Header(name) => Some(name),
            Part::Literal(_) | Part::Body => None,
        })
    }
}

fn push_literal(parts: &mut Vec<Part>, text: &str) {
    if !text.is_empty() {
        parts.push(Part::Literal(text.as_bytes().into()));
    }
}

fn placeholder(inner: &str) -> Result<Part, String> {
    if inner == "body" {
        return Ok(Part::Body);
    }
    match inner.strip_prefix("header:") {
        Some(name) => HeaderName::from_bytes(name.as_bytes())
            .map(Part::Header)
            .map_err(|_| format!("`{{{inner}}}`: `{name}` is not a valid header name")),
        None => Err(format!(
            "unknown placeholder `{{{inner}}}`: use {{body}} or {{header:NAME}}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &Template, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
        template.chunks(headers, body).collect::<Vec<_>>().concat()
    }

    #[test]
    fn parts_render_in_order() {
        let template = Template::parse("v0:{header:X-Slack-Request-Timestamp}:{body}").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-slack-request-timestamp", HeaderValue::from_static("123"));
        assert_eq!(render(&template, &headers, b"{}"), b"v0:123:{}");
        assert_eq!(
            template.headers().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["x-slack-request-timestamp"]
        );
    }

    #[test]
    fn body_alone_and_repeated_parts_work() {
        let template = Template::parse("{body}").unwrap();
        assert_eq!(render(&template, &HeaderMap::new(), b"abc"), b"abc");
        let template = Template::parse("{body}|{body}").unwrap();
        assert_eq!(render(&template, &HeaderMap::new(), b"x"), b"x|x");
    }

    #[test]
    fn absent_headers_render_empty() {
        let template = Template::parse("{header:x-id}.{body}").unwrap();
        assert_eq!(render(&template, &HeaderMap::new(), b"b"), b".b");
    }

    #[test]
    fn bad_templates_are_explained() {
        for (text, needle) in [
            ("{timestamp}.{body}", "unknown placeholder `{timestamp}`"),
            ("{header:}.{body}", "not a valid header name"),
            ("{header:a b}.{body}", "not a valid header name"),
            ("{body", "without a closing"),
            ("body}", "without a matching"),
            ("{header:x-ts}", "must contain {body}"),
            ("", "must contain {body}"),
            ("{{body}}", "unknown placeholder"),
        ] {
            let message = Template::parse(text).unwrap_err();
            assert!(message.contains(needle), "{text}: {message}");
        }
    }
}
