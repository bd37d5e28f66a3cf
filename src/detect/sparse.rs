//! Per-sample values only a few samples have.
//!
//! A detector gives a reason (and perhaps a suggested label) only to the
//! samples it flags. Kept as one `Option<String>` per sample, the reasons
//! of the eight detectors cost 24 bytes × 8 per sample whether flagged or
//! not — 190 MB of a million-sample scan's peak, next to the 256 MB of its
//! embeddings. Kept by sample index, they cost what the flags hold.

use std::collections::BTreeMap;

/// Values for some of the samples, by sample index (ordered, so a report
/// reads the same every time and the stored form is deterministic).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Sparse<T>(BTreeMap<u32, T>);

impl<T> Default for Sparse<T> {
    fn default() -> Self {
        Sparse(BTreeMap::new())
    }
}

impl<T> Sparse<T> {
    /// The value of sample `i`, if it has one.
    pub fn get(&self, i: usize) -> Option<&T> {
        u32::try_from(i).ok().and_then(|k| self.0.get(&k))
    }

    /// Gives sample `i` the value `v` (replacing any it had). Sample
    /// indices fit in `u32` (the neighbour lists hold them so too).
    pub fn set(&mut self, i: usize, v: T) {
        let k = u32::try_from(i).expect("sample index fits in u32");
        self.0.insert(k, v);
    }

    /// Takes sample `i`'s value away, if it had one.
    pub fn remove(&mut self, i: usize) {
        if let Ok(k) = u32::try_from(i) {
            self.0.remove(&k);
        }
    }

    /// Samples holding a value, with it, by index.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.0.iter().map(|(&k, v)| (k as usize, v))
    }

    /// Number of samples holding a value.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// Whether every index held is below `n` (a stored result read back is
    /// checked against its dataset's size).
    pub fn fits(&self, n: usize) -> bool {
        self.0
            .last_key_value()
            .is_none_or(|(&k, _)| (k as usize) < n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_values_set_in_any_order_and_reads_them_back_by_index() {
        let mut s = Sparse::default();
        s.set(7, "seven".to_string());
        s.set(2, "two".to_string());
        s.set(7, "still seven".to_string());
        assert_eq!(s.get(7).map(String::as_str), Some("still seven"));
        assert_eq!(s.get(2).map(String::as_str), Some("two"));
        assert_eq!(s.get(3), None);
        assert_eq!(s.get(usize::MAX), None);
        assert_eq!(s.iter().map(|(i, _)| i).collect::<Vec<_>>(), [2, 7]);
        assert_eq!(s.count(), 2);
        assert!(s.fits(8) && !s.fits(7));
        let bytes = rmp_serde::to_vec(&s).unwrap();
        let back: Sparse<String> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, s);
    }
}
