//! The second view of every sample: its input-space features
//! ([`images::input_view`]), which do not come from the suspect model.
//!
//! A model trained on poisoned labels places poison with its (wrong) label —
//! it learned to — but relabelling an image does not change how it looks:
//! in this view a flipped or near-copied sample sits with its source class.
//! The view is PCA-reduced to [`DIMS`] dimensions (neighbour search cost) and
//! its neighbours are computed once per scan.

use crate::dataset::images::{self, ImageDigest};
use crate::knn::{Neighbors, Watch, knn_watched};
use crate::linalg::{Matrix, Pca};

/// Dimensions the input view is reduced to before neighbour search.
pub const DIMS: usize = 32;

/// The input view of a dataset and its neighbours.
pub struct InputView {
    /// N×[`DIMS`] reduced features (unreadable images: the mean).
    pub matrix: Matrix,
    /// Whether the sample's image was readable (others never vote or flag).
    pub valid: Vec<bool>,
    /// k nearest neighbours of every sample in this view.
    pub nb: Neighbors,
}

impl InputView {
    /// Builds the view from the scan's image digests; None when fewer than
    /// three images were readable, or when `cancelled` stopped its
    /// neighbour search (the scan built beside it checks again at once).
    pub fn build(
        digests: &[Result<ImageDigest, String>],
        k: usize,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Option<InputView> {
        let valid: Vec<bool> = digests.iter().map(Result::is_ok).collect();
        if valid.iter().filter(|&&v| v).count() < 3 {
            return None;
        }
        let full = images::pixel_features(digests)?;
        let matrix = if full.cols > DIMS {
            Pca::fit(&full, DIMS).transform_matrix(&full)
        } else {
            full
        };
        let watch = Watch {
            progress: &|_| {},
            cancelled,
        };
        let nb = knn_watched(&matrix, k.min(matrix.rows - 1), &watch)?;
        Some(InputView { matrix, valid, nb })
    }
}

/// Fewest unflagged input-space neighbours that must carry a class before
/// it is suggested as a flagged sample's source.
pub const MIN_SOURCE_VOTES: usize = 3;

/// The class a flagged sample looks like in input space, as
/// [`InputView::source_class`] finds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Source {
    /// The class most of its unflagged pixel-space neighbours carry.
    pub class: u32,
    /// How many of them carry it.
    pub votes: usize,
    /// How many unflagged, readable neighbours were counted.
    pub counted: usize,
    /// Share of the sample's own class's unflagged images whose neighbours
    /// carry `class` at least as often (with the sample itself counted):
    /// how ordinary looking like `class` is in that class. 1 until
    /// [`InputView::sources`] measures it.
    pub p: f64,
}

impl Source {
    /// Share of the counted neighbours that carry the class.
    fn share(&self) -> f32 {
        self.votes as f32 / self.counted.max(1) as f32
    }
}

impl InputView {
    /// The class sample `i` looks like in input space, when that is not its
    /// label: the majority label of its pixel-space neighbours that are
    /// neither flagged nor unreadable. Relabelling (a backdoor's target, a
    /// flip) does not change how an image looks, so a stamped sandal
    /// labelled Bag still sits among sandals here while the model places it
    /// with Bags. Flagged neighbours do not vote: they are the poison's own
    /// group, carrying its label. None unless the class holds a strict
    /// majority of at least [`MIN_SOURCE_VOTES`] votes.
    pub fn source_class(&self, i: usize, labels: &[u32], flagged: &[bool]) -> Option<Source> {
        if !self.valid.get(i).copied().unwrap_or(false) {
            return None;
        }
        let (counted, counts) = self.unflagged_votes(i, labels, flagged);
        let (class, votes) = counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))?;
        (class != labels[i] && votes >= MIN_SOURCE_VOTES && 2 * votes > counted).then_some(Source {
            class,
            votes,
            counted,
            p: 1.0,
        })
    }

    /// The labels an annotator could restore: for each flagged sample
    /// `wanted` names, its [`InputView::source_class`] — kept only where
    /// looking that much like that class is rare among the unflagged images
    /// of its own class (`p` ≤ `alpha`). A stamped sandal labelled Bag sits
    /// among sandals as hardly any clean Bag does, and gets Sandal; in
    /// classes whose clean images often sit among another class (shirts
    /// among T-shirts) a sample needs to look more like it. Measured, this
    /// does not stop a clean-label poison whose stamp makes it look like
    /// another class (checkerboarded sneakers among sandals): such images
    /// are as rare in their class as a relabelled one, and get a
    /// suggestion the annotator should decline (the image shows a sneaker).
    pub fn sources(
        &self,
        labels: &[u32],
        flagged: &[bool],
        wanted: impl Fn(usize) -> bool,
        alpha: f64,
    ) -> Vec<Option<Source>> {
        let n = labels.len();
        let mut out: Vec<Option<Source>> = (0..n)
            .map(|i| {
                (flagged[i] && wanted(i))
                    .then(|| self.source_class(i, labels, flagged))
                    .flatten()
            })
            .collect();
        // The (own class, looks-like class) pairs asked about, and for each
        // the shares of the own class's unflagged images, sorted.
        let mut null: std::collections::HashMap<(u32, u32), Vec<f32>> = Default::default();
        for s in out
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (labels[i], s.class)))
        {
            null.entry(s).or_default();
        }
        let mut asked: std::collections::HashMap<u32, Vec<u32>> = Default::default();
        for &(c, m) in null.keys() {
            asked.entry(c).or_default().push(m);
        }
        for j in (0..n).filter(|&j| self.valid[j] && !flagged[j]) {
            let Some(ms) = asked.get(&labels[j]) else {
                continue;
            };
            let (counted, counts) = self.unflagged_votes(j, labels, flagged);
            for &m in ms {
                let votes = counts.iter().find(|c| c.0 == m).map_or(0, |c| c.1);
                let share = votes as f32 / counted.max(1) as f32;
                null.get_mut(&(labels[j], m)).expect("asked").push(share);
            }
        }
        for v in null.values_mut() {
            v.sort_by(f32::total_cmp);
        }
        for (i, slot) in out.iter_mut().enumerate() {
            let Some(s) = slot else { continue };
            let v = &null[&(labels[i], s.class)];
            let at_least = v.len() - v.partition_point(|&x| x < s.share());
            s.p = (1 + at_least) as f64 / (1 + v.len()) as f64;
            if s.p > alpha {
                *slot = None;
            }
        }
        out
    }

    /// How many of sample `i`'s neighbours are readable and unflagged, and
    /// how many of those carry each label.
    fn unflagged_votes(
        &self,
        i: usize,
        labels: &[u32],
        flagged: &[bool],
    ) -> (usize, Vec<(u32, usize)>) {
        label_votes(&self.nb, labels, i, |j| {
            j != i && self.valid[j] && !flagged[j]
        })
    }
}

/// How many of sample `i`'s neighbours in `nb` `vote` admits, and how many
/// of those carry each label (in order of first appearance): the one count
/// behind every input-view judgement of a sample's look.
pub fn label_votes(
    nb: &Neighbors,
    labels: &[u32],
    i: usize,
    vote: impl Fn(usize) -> bool,
) -> (usize, Vec<(u32, usize)>) {
    let mut counts: Vec<(u32, usize)> = Vec::new();
    let mut counted = 0;
    for j in nb.of(i).iter().map(|&j| j as usize).filter(|&j| vote(j)) {
        counted += 1;
        match counts.iter_mut().find(|c| c.0 == labels[j]) {
            Some(c) => c.1 += 1,
            None => counts.push((labels[j], 1)),
        }
    }
    (counted, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples whose pixel-space neighbours are given row by row.
    fn view<const K: usize>(rows: &[[u32; K]], valid: Vec<bool>) -> InputView {
        InputView {
            matrix: Matrix::new(rows.len(), 1, vec![0.0; rows.len()]),
            valid,
            nb: Neighbors {
                k: K,
                idx: rows.iter().flatten().copied().collect(),
                dist2: vec![1.0; rows.len() * K],
            },
        }
    }

    #[test]
    fn a_cancelled_build_stops_and_says_so() {
        // Twelve small images, each a bar at its own place.
        let digests: Vec<Result<ImageDigest, String>> = (0..12u32)
            .map(|k| {
                let img = image::GrayImage::from_fn(28, 28, |x, y| {
                    image::Luma([if (x + 2 * k) % 28 < 4 && y > k {
                        255
                    } else {
                        0
                    }])
                });
                Ok(images::digest(&image::DynamicImage::ImageLuma8(img), 28))
            })
            .collect();
        let view = InputView::build(&digests, 5, &|| false).expect("a view");
        assert_eq!((view.nb.k, view.valid.len()), (5, 12));
        assert!(InputView::build(&digests, 5, &|| true).is_none());
    }

    #[test]
    fn a_flagged_sample_gets_the_class_its_unflagged_look_alikes_carry() {
        // Sample 0 is labelled 1 but sits among samples 2..=5, labelled 0;
        // sample 1 (flagged, labelled 1 like it) is its group and never votes.
        let labels = [1, 1, 0, 0, 0, 0];
        let flagged = [true, true, false, false, false, false];
        let nb = [[1, 2, 3, 4, 5]; 6];
        let v = view(&nb, vec![true; 6]);
        let s = v.source_class(0, &labels, &flagged).unwrap();
        assert_eq!((s.class, s.votes, s.counted), (0, 4, 4));
        // A sample among its own class gets nothing.
        assert_eq!(v.source_class(2, &labels, &flagged), None);
    }

    #[test]
    fn no_source_without_a_clear_majority_of_readable_images() {
        let labels = [1, 0, 0, 2, 2, 1];
        let flagged = [true, false, false, false, false, false];
        let nb = [[1, 2, 3, 4, 5]; 6];
        // Two votes for 0, two for 2, one for 1: no majority.
        assert_eq!(
            view(&nb, vec![true; 6]).source_class(0, &labels, &flagged),
            None
        );
        // Unreadable images do not vote: three of the three readable ones
        // carry 0.
        let labels = [1, 0, 0, 2, 2, 0];
        let valid = vec![true, true, true, false, false, true];
        let s = view(&nb, valid).source_class(0, &labels, &flagged).unwrap();
        assert_eq!((s.class, s.votes, s.counted), (0, 3, 3));
        // An unreadable sample itself is never given a source.
        let valid = vec![false, true, true, true, true, true];
        assert_eq!(view(&nb, valid).source_class(0, &labels, &flagged), None);
    }

    /// 40 samples of class 0 (0..40) and 40 of class 1 (40..80); sample 40
    /// is flagged and its neighbours are all of class 0. `look_alikes` of
    /// the unflagged class-1 samples also sit among class 0.
    fn two_classes(look_alikes: usize) -> (InputView, Vec<u32>, Vec<bool>) {
        let labels: Vec<u32> = (0..80).map(|i| u32::from(i >= 40)).collect();
        let mut flagged = vec![false; 80];
        flagged[40] = true;
        let rows: Vec<[u32; 4]> = (0..80u32)
            .map(|i| {
                let among_zeros = i <= 40 || (41..41 + look_alikes as u32).contains(&i);
                let base = if among_zeros { 0 } else { 41 };
                std::array::from_fn(|k| base + (i + 1 + k as u32) % 39)
            })
            .collect();
        (view(&rows, vec![true; 80]), labels, flagged)
    }

    #[test]
    fn a_source_is_suggested_only_where_its_class_rarely_looks_like_it() {
        // No clean class-1 image sits among class 0: sample 40's look is
        // rare (p = 1/40) and its source is suggested.
        let (v, labels, flagged) = two_classes(0);
        let s = v.sources(&labels, &flagged, |_| true, 0.05);
        let s40 = s[40].expect("suggested");
        assert_eq!(s40.class, 0);
        assert!((s40.p - 1.0 / 40.0).abs() < 1e-9, "{}", s40.p);
        assert!(s.iter().enumerate().all(|(i, s)| i == 40 || s.is_none()));
        // A quarter of the clean class-1 images look like class 0 too
        // (similar classes, or a clean-label poison's class): nothing.
        let (v, labels, flagged) = two_classes(10);
        assert!(
            v.sources(&labels, &flagged, |_| true, 0.05)
                .iter()
                .all(Option::is_none)
        );
        // Samples that already have a suggestion are not asked about.
        let (v, labels, flagged) = two_classes(0);
        assert!(v.sources(&labels, &flagged, |i| i != 40, 0.05)[40].is_none());
    }
}
