//! The `signed` template of header-carried HMAC schemes: literal text,
//! `{body}`, `{header:NAME}`, `{url}` and `{method}` parts, parsed once at
//! start-up and fed to the MAC chunk by chunk, so the signed content is
//! never assembled in memory.

use http::{HeaderName, HeaderValue};

use super::request::RequestHead;

/// One piece of the signed content.
#[derive(Debug)]
enum Part {
    /// Text copied as is.
    Literal(Box<[u8]>),
    /// The raw request body.
    Body,
    /// The raw value of a request header (empty when absent).
    Header(HeaderName),
    /// The source's public URL, then `?` and the query string as received when there is one.
    Url,
    /// The request method, e.g. `POST`.
    Method,
}

/// What a sender signs, e.g. `v0:{header:x-slack-request-timestamp}:{body}`.
#[derive(Debug)]
pub(super) struct Template {
    parts: Vec<Part>,
    /// The source's `public_url`, when the template reads `{url}`.
    url: Box<str>,
}

impl Template {
    /// Parses a template; `public_url` is what `{url}` starts with. The
    /// message says what is wrong, for the `hmac.signed` key.
    pub(super) fn parse(text: &str, public_url: Option<&str>) -> Result<Self, String> {
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
        let reads_url = parts.iter().any(|part| matches!(part, Part::Url));
        let url = match public_url {
            Some(url) => url,
            None if reads_url => return Err("reads {url}, which needs the source's public_url".into()),
            None => "",
        };
        Ok(Self { parts, url: url.into() })
    }

    /// The signed content of a request, in order, as borrowed chunks.
    pub(super) fn chunks<'a>(&'a self, head: RequestHead<'a>, body: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
        const NONE: &[u8] = b"";
        self.parts.iter().flat_map(move |part| match part {
            Part::Literal(text) => [&text[..], NONE, NONE],
            Part::Body => [body, NONE, NONE],
            Part::Header(name) => [head.headers.get(name).map_or(NONE, HeaderValue::as_bytes), NONE, NONE],
            Part::Url => match head.query {
                Some(query) if !query.is_empty() => [self.url.as_bytes(), b"?", query.as_bytes()],
                _ => [self.url.as_bytes(), NONE, NONE],
            },
            Part::Method => [head.method.as_str().as_bytes(), NONE, NONE],
        })
    }

    /// The headers the template reads.
    pub(super) fn headers(&self) -> impl Iterator<Item = &HeaderName> {
        self.parts.iter().filter_map(|part| match part {
            Part::Header(name) => Some(name),
            Part::Literal(_) | Part::Body | Part::Url | Part::Method => None,
        })
    }
}

fn push_literal(parts: &mut Vec<Part>, text: &str) {
    if !text.is_empty() {
        parts.push(Part::Literal(text.as_bytes().into()));
    }
}

fn placeholder(inner: &str) -> Result<Part, String> {
    match inner {
        "body" => return Ok(Part::Body),
        "url" => return Ok(Part::Url),
        "method" => return Ok(Part::Method),
        _ => {}
    }
    match inner.strip_prefix("header:") {
        Some(name) => HeaderName::from_bytes(name.as_bytes())
            .map(Part::Header)
            .map_err(|_| format!("`{{{inner}}}`: `{name}` is not a valid header name")),
        None => Err(format!(
            "unknown placeholder `{{{inner}}}`: use {{body}}, {{header:NAME}}, {{url}} or {{method}}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method};

    fn render(template: &Template, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
        template
            .chunks(RequestHead::post(headers), body)
            .collect::<Vec<_>>()
            .concat()
    }

    fn parse(text: &str) -> Result<Template, String> {
        Template::parse(text, None)
    }

    #[test]
    fn parts_render_in_order() {
        let template = parse("v0:{header:X-Slack-Request-Timestamp}:{body}").unwrap();
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
        let template = parse("{body}").unwrap();
        assert_eq!(render(&template, &HeaderMap::new(), b"abc"), b"abc");
        let template = parse("{body}|{body}").unwrap();
        assert_eq!(render(&template, &HeaderMap::new(), b"x"), b"x|x");
    }

    #[test]
    fn absent_headers_render_empty() {
        let template = parse("{header:x-id}.{body}").unwrap();
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
            ("{url}{body}", "needs the source's public_url"),
        ] {
            let message = parse(text).unwrap_err();
            assert!(message.contains(needle), "{text}: {message}");
        }
    }

    #[test]
    fn url_and_method_render_what_the_sender_signed() {
        let template =
            Template::parse("{method} {url}\n{body}", Some("https://hooks.example.com/webhooks/sq")).unwrap();
        let headers = HeaderMap::new();
        let mut head = RequestHead::post(&headers);
        assert_eq!(
            template.chunks(head, b"b").collect::<Vec<_>>().concat(),
            b"POST https://hooks.example.com/webhooks/sq\nb"
        );
        head.query = Some("a=1&b=%20");
        let put = Method::PUT;
        head.method = &put;
        assert_eq!(
            template.chunks(head, b"b").collect::<Vec<_>>().concat(),
            b"PUT https://hooks.example.com/webhooks/sq?a=1&b=%20\nb"
        );
        head.query = Some("");
        assert_eq!(
            template.chunks(head, b"").collect::<Vec<_>>().concat(),
            b"PUT https://hooks.example.com/webhooks/sq\n"
        );
        assert_eq!(template.headers().count(), 0);
    }
}
