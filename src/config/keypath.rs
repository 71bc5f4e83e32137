//! Keys as the README writes them: `sources[0].verify`,
//! `kafka.options."linger.ms"`. Problems found while parsing and problems
//! found by the checks afterwards are both named, and placed, by these paths.

use std::fmt;

/// A path from the root of the configuration to one value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPath(Vec<Segment>);

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A key of a table.
    Key(String),
    /// A position in an array (`[[sources]]` tables included).
    Index(usize),
}

impl KeyPath {
    /// The steps, from the root.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// True for the root of the configuration.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// This path with a key appended.
    pub fn child(&self, key: &str) -> Self {
        self.with(Segment::Key(key.to_owned()))
    }

    /// This path with an array position appended.
    pub fn index(&self, index: usize) -> Self {
        self.with(Segment::Index(index))
    }

    fn with(&self, segment: Segment) -> Self {
        let mut segments = self.0.clone();
        segments.push(segment);
        Self(segments)
    }

    /// The path of the table or array holding this value.
    pub fn parent(&self) -> Option<Self> {
        let (_, init) = self.0.split_last()?;
        Some(Self(init.to_vec()))
    }

    /// This path and every path that holds it, nearest first.
    pub fn ancestry(&self) -> impl Iterator<Item = KeyPath> + '_ {
        (0..=self.0.len()).rev().map(|len| Self(self.0[..len].to_vec()))
    }

    /// The last key on the path (for `sources[0]`, `sources`).
    pub fn last_key(&self) -> Option<&str> {
        self.0.iter().rev().find_map(|segment| match segment {
            Segment::Key(key) => Some(key.as_str()),
            Segment::Index(_) => None,
        })
    }

    /// True when `other` is this path or holds it.
    pub fn starts_with(&self, other: &KeyPath) -> bool {
        self.0.starts_with(&other.0)
    }

    /// True when one of the two paths holds the other (or they are equal).
    pub fn related(&self, other: &KeyPath) -> bool {
        self.starts_with(other) || other.starts_with(self)
    }

    /// Reads a key as the checks write it; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let mut segments = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']')?;
                segments.push(Segment::Index(after[..end].parse().ok()?));
                rest = &after[end + 1..];
                continue;
            }
            if !segments.is_empty() {
                rest = rest.strip_prefix('.')?;
            }
            let (key, after) = match rest.strip_prefix('"') {
                Some(quoted) => {
                    let end = quoted.find('"')?;
                    (&quoted[..end], &quoted[end + 1..])
                }
                None => {
                    let end = rest.find(['.', '[']).unwrap_or(rest.len());
                    (&rest[..end], &rest[end..])
                }
            };
            if key.is_empty() {
                return None;
            }
            segments.push(Segment::Key(key.to_owned()));
            rest = after;
        }
        Some(Self(segments))
    }

    /// The path serde_path_to_error recorded for a failure.
    pub(super) fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        Self(
            path.iter()
                .filter_map(|segment| match segment {
                    S::Map { key } => Some(Segment::Key(key.clone())),
                    S::Seq { index } => Some(Segment::Index(*index)),
                    S::Enum { .. } | S::Unknown => None,
                })
                .collect(),
        )
    }
}

/// A key that TOML accepts without quotes.
fn is_bare(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare(key) {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_as_the_readme_writes_them() {
        let path = KeyPath::default().child("sources").index(0).child("verify");
        assert_eq!(path.to_string(), "sources[0].verify");
        let option = KeyPath::default().child("kafka").child("options").child("linger.ms");
        assert_eq!(option.to_string(), "kafka.options.\"linger.ms\"");
    }

    #[test]
    fn keys_written_by_the_checks_parse_back() {
        for text in [
            "sources[2].secrets[1]",
            "kafka.options.\"linger.ms\"",
            "query.tokens[0].scopes",
            "ingest",
        ] {
            assert_eq!(KeyPath::parse(text).unwrap().to_string(), text);
        }
        let quoted_bare = KeyPath::parse("kafka.options.\"acks\"").unwrap();
        assert_eq!(
            quoted_bare,
            KeyPath::default().child("kafka").child("options").child("acks")
        );
        for broken in ["a..b", "a[x]", "a[1", "\"open", ".a"] {
            assert_eq!(KeyPath::parse(broken), None, "{broken}");
        }
    }

    #[test]
    fn relations_follow_whole_segments() {
        let source = KeyPath::parse("sources[1]").unwrap();
        assert!(KeyPath::parse("sources[1].name").unwrap().starts_with(&source));
        assert!(!KeyPath::parse("sources[10].name").unwrap().starts_with(&source));
        assert!(source.related(&KeyPath::parse("sources").unwrap()));
        assert_eq!(source.last_key(), Some("sources"));
        let ancestry: Vec<String> = source.ancestry().map(|p| p.to_string()).collect();
        assert_eq!(ancestry, ["sources[1]", "sources", ""]);
    }
}
