//! Cache keys (DESIGN.md §4.3): a step's key is the sha256 of everything its
//! result depends on: the snapshot it starts from, the instruction after
//! expansion, and the content of what it reads (context files by checksum,
//! other stages by their snapshot). Equal keys mean equal results, so a hit
//! reuses the recorded snapshot without running the step.

use berth_oci::Digest;
use sha2::{Digest as _, Sha256};

/// Bumped whenever what goes into a key changes, so old records stop
/// matching instead of matching wrongly.
const KEY_VERSION: &str = "berth-build-cache-v1";

pub struct KeyBuilder {
    hasher: Sha256,
}

impl KeyBuilder {
    /// A key for an operation of `kind` on top of `parent` (`None`: scratch).
    pub fn new(kind: &str, parent: Option<&Digest>) -> Self {
        let mut k = Self {
            hasher: Sha256::new(),
        };
        k.field(KEY_VERSION);
        k.field(kind);
        k.field(parent.map_or("scratch", |p| p.as_str()));
        k
    }

    /// Adds one length-prefixed field, so `("ab","c")` and `("a","bc")` differ.
    pub fn field(&mut self, value: &str) -> &mut Self {
        self.hasher.update((value.len() as u64).to_le_bytes());
        self.hasher.update(value.as_bytes());
        self
    }

    pub fn list<S: AsRef<str>>(&mut self, values: &[S]) -> &mut Self {
        self.field(&values.len().to_string());
        for v in values {
            self.field(v.as_ref());
        }
        self
    }

    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_delimited() {
        let mut a = KeyBuilder::new("run", None);
        a.field("ab").field("c");
        let mut b = KeyBuilder::new("run", None);
        b.field("a").field("bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn parent_matters() {
        let p = Digest::sha256_of(b"x");
        assert_ne!(
            KeyBuilder::new("run", None).finish(),
            KeyBuilder::new("run", Some(&p)).finish()
        );
    }
}
