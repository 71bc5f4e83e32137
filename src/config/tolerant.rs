//! Deserialization that does not stop at the first problem. serde stops at
//! the first value that does not fit; here that value is recorded, taken out
//! of the tree, and deserialization runs again, until what is left parses.
//! One run so finds every problem, and whatever did parse (with defaults in
//! place of what was taken out) still reaches the checks that follow.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use super::explain::missing_key;
use super::keypath::{KeyPath, Segment};

/// Each round takes a value out, so rounds are bounded by the tree's size;
/// this bound only guards against a value that cannot be taken out.
const MAX_ROUNDS: usize = 10_000;

/// One value that did not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    /// The key, with array positions as written in the file.
    pub(super) path: KeyPath,
    /// serde's message.
    pub(super) message: String,
}

/// What [`deserialize_all`] found.
#[derive(Debug)]
pub(super) struct Attempt<T> {
    /// The value built from what parsed; `None` only when the root itself did not fit.
    pub(super) value: Option<T>,
    /// Every failure, once each, in the order found.
    pub(super) failures: Vec<Failure>,
    /// What was taken out of the tree, with positions as written in the file.
    pub(super) removed: Vec<KeyPath>,
    /// How positions in `value`'s arrays map back to the file's.
    pub(super) positions: Positions,
}

/// Array positions after entries were taken out, mapped back to the file's:
/// with `[[sources]]` 0 taken out, the parsed `sources[0]` is the file's `sources[1]`.
#[derive(Debug, Default)]
pub(super) struct Positions(HashMap<KeyPath, Vec<usize>>);

impl Positions {
    /// `path` (with positions in the pruned tree) with the positions written in the file.
    pub(super) fn original(&self, path: &KeyPath) -> KeyPath {
        path.segments()
            .iter()
            .fold(KeyPath::default(), |original, segment| match segment {
                Segment::Key(key) => original.child(key),
                Segment::Index(index) => {
                    let kept = self.0.get(&original).and_then(|kept| kept.get(*index));
                    original.index(kept.copied().unwrap_or(*index))
                }
            })
    }

    /// Records that entry `index` of an array of `len` (at file path `array`) was taken out.
    fn take_out(&mut self, array: KeyPath, index: usize, len: usize) {
        self.0.entry(array).or_insert_with(|| (0..len).collect()).remove(index);
    }
}

/// Deserializes `T` from `root`, taking out every value that fails (a table
/// missing a required key goes whole) and recording why.
pub(super) fn deserialize_all<T: DeserializeOwned>(root: toml::Table) -> Attempt<T> {
    let mut tree = toml::Value::Table(root);
    let mut attempt = Attempt {
        value: None,
        failures: Vec::new(),
        removed: Vec::new(),
        positions: Positions::default(),
    };
    for _ in 0..MAX_ROUNDS {
        let error = match serde_path_to_error::deserialize::<_, T>(tree.clone()) {
            Ok(value) => {
                attempt.value = Some(value);
                break;
            }
            Err(error) => error,
        };
        let at = KeyPath::from_serde(error.path());
        let message = error.into_inner().message().to_owned();
        // A table missing a required key goes whole; any other failing value goes alone.
        let (failed, culprit) = match missing_key(&message) {
            Some(key) => (at.child(key), at),
            None => (at.clone(), at),
        };
        let failed = attempt.positions.original(&failed);
        let original = attempt.positions.original(&culprit);
        // A required key taken out in an earlier round was reported then.
        if !attempt.removed.contains(&failed) {
            attempt.failures.push(Failure { path: failed, message });
        }
        if culprit.is_root() || !take_out(&mut tree, &culprit, &mut attempt.positions) {
            break;
        }
        attempt.removed.push(original);
    }
    attempt
}

/// Takes the value at `path` out of `tree`; false when there is none.
fn take_out(tree: &mut toml::Value, path: &KeyPath, positions: &mut Positions) -> bool {
    let Some(parent_path) = path.parent() else {
        return false;
    };
    let array = positions.original(&parent_path);
    let parent = parent_path
        .segments()
        .iter()
        .try_fold(tree, |value, segment| match segment {
            Segment::Key(key) => value.get_mut(key.as_str()),
            Segment::Index(index) => value.get_mut(*index),
        });
    match (parent, path.segments().last()) {
        (Some(toml::Value::Table(table)), Some(Segment::Key(key))) => table.remove(key).is_some(),
        (Some(toml::Value::Array(items)), Some(Segment::Index(index))) if *index < items.len() => {
            positions.take_out(array, *index, items.len());
            items.remove(*index);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Shape {
        #[serde(default)]
        port: u16,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        name: String,
        #[serde(default)]
        tags: Vec<u8>,
    }

    fn attempt(text: &str) -> Attempt<Shape> {
        deserialize_all(text.parse::<toml::Table>().unwrap())
    }

    /// The failed keys, sorted (tables are read in key order).
    fn failed(attempt: &Attempt<Shape>) -> Vec<String> {
        let mut keys: Vec<String> = attempt.failures.iter().map(|f| f.path.to_string()).collect();
        keys.sort();
        keys
    }

    #[test]
    fn every_failure_is_found_in_one_run_and_the_rest_still_parses() {
        let found = attempt(
            "port = 70000\nextra = 1\n\
             [[items]]\nname = 1\n[[items]]\nname = \"b\"\ntags = [1, 300, 2, 999]\n",
        );
        assert_eq!(
            failed(&found),
            ["extra", "items[0].name", "items[1].tags[1]", "items[1].tags[3]", "port"]
        );
        let shape = found.value.unwrap();
        assert_eq!(shape.port, 0, "the default stands in for what failed");
        assert_eq!(shape.items.len(), 1, "items[0] lost its required name");
        assert_eq!(shape.items[0].name, "b");
        assert_eq!(shape.items[0].tags, [1, 2]);
    }

    #[test]
    fn positions_after_a_removed_entry_are_the_files() {
        let found = attempt("[[items]]\ntags = [1]\n[[items]]\nname = \"b\"\nbad = true\n");
        assert_eq!(failed(&found), ["items[0].name", "items[1].bad"]);
        let parsed = KeyPath::parse("items[0].tags").unwrap();
        assert_eq!(found.positions.original(&parsed).to_string(), "items[1].tags");
        assert!(found.removed.contains(&KeyPath::parse("items[0]").unwrap()));
    }

    #[test]
    fn a_required_key_that_failed_is_reported_once() {
        let found = attempt("[[items]]\nname = [1]\n");
        assert_eq!(failed(&found), ["items[0].name"]);
        assert!(
            found.failures[0].message.starts_with("invalid type"),
            "{:?}",
            found.failures
        );
    }
}
