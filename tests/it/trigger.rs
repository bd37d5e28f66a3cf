//! Trigger localization from images: the bundled sample's corner patch,
//! searching a selection, and the awkward inputs (mixed sizes, grey mixed
//! with colour, tiny groups).

use std::path::PathBuf;

use image::{DynamicImage, GrayImage, RgbImage};
use poisonlens::dataset::images::{Thumb, thumb, trigger_side};
use poisonlens::dataset::{Dataset, OpenOptions};
use poisonlens::detect::trigger::{self, ImageStack, TriggerKind, localize};
use poisonlens::detect::{DEFAULT_FDR, ScanOptions, scan};
use poisonlens::eval::{iou, quality, read_truth, true_trigger_box};

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample_data")
}

#[test]
fn the_sample_backdoor_is_found_from_its_images_though_its_embeddings_hide_it() {
    let ds = Dataset::open(&sample(), &OpenOptions::default()).unwrap();
    let r = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
    assert_eq!(
        r.triggers.len(),
        1,
        "{:?}",
        r.triggers.iter().map(|t| &t.summary).collect::<Vec<_>>()
    );
    let t = &r.triggers[0];
    assert_eq!(t.kind, TriggerKind::Patch);
    assert_eq!(r.class_names[t.class as usize], "Bag");
    let truth_box = true_trigger_box(&sample()).unwrap();
    assert!(
        iou(t.bbox.unwrap(), truth_box) >= 0.5,
        "{:?} vs {truth_box:?}",
        t.bbox
    );
    // Its pattern: the sample's stamp is a white 3×3 square.
    let p = t.pattern.as_ref().unwrap();
    assert_eq!((p.width, p.height), (3, 3));
    assert!(
        p.mask.iter().all(|&m| m) && p.pixels.iter().all(|&v| v > 200),
        "{p:?}"
    );

    // Raises recall: the embeddings alone miss most of the backdoor. Both
    // image searches left out: the fixed-pattern search finds the stamp's
    // steps too (its carriers are a wide share of 'Bag').
    let truth = read_truth(&sample().join("truth.csv")).unwrap();
    let with = quality(&r.ids, &r.flagged, &truth);
    let without = quality(
        &r.ids,
        &r.flagged_without(&["trigger", "fixed_pattern"]),
        &truth,
    );
    assert!(
        with.recall() > without.recall() + 0.3,
        "{with:?} vs {without:?}"
    );
    let det = r.detector("trigger").unwrap();
    let by_trigger = quality(&r.ids, &det.flagged, &truth);
    assert!(by_trigger.precision() >= 0.9, "{by_trigger:?}");
    // Every carrier has a box in its own pixels; the poisoned ones where
    // the truth says.
    for i in (0..r.ids.len()).filter(|&i| det.flagged[i]) {
        let b = r.trigger_box[i].expect("a patch carrier has a box");
        assert_eq!(r.trigger_of[i], Some(0));
        if truth[&r.ids[i]] {
            assert!(iou(b, truth_box) >= 0.5, "{}: {b:?}", r.ids[i]);
        }
    }
}

#[test]
fn a_selection_of_backdoored_images_reveals_the_patch_and_every_carrier() {
    let ds = Dataset::open(&sample(), &OpenOptions::default()).unwrap();
    let r = scan(&ds, &ScanOptions::default(), &|_, _| {}).unwrap();
    let stack = r.images.as_ref().expect("images were read");
    let truth = std::fs::read_to_string(sample().join("truth.csv")).unwrap();
    let backdoored: Vec<usize> = truth
        .lines()
        .skip(1)
        .filter(|l| l.contains(",backdoor,"))
        .map(|l| {
            ds.ids
                .iter()
                .position(|id| l.starts_with(&format!("{id},")))
                .unwrap()
        })
        .collect();
    // A handful picked by hand is enough.
    let picked: Vec<usize> = backdoored.iter().copied().step_by(10).collect();
    let f = trigger::find_in_selection(stack, &r.labels, &r.class_names, &picked).unwrap();
    let t = f.trigger.as_ref().expect("a trigger in the selection");
    assert!(iou(t.bbox.unwrap(), true_trigger_box(&sample()).unwrap()) >= 0.5);
    let found = backdoored.iter().filter(|i| f.carriers.contains(i)).count();
    assert!(
        found as f64 >= 0.95 * backdoored.len() as f64,
        "{found} of {}",
        backdoored.len()
    );

    // Ordinary images share no trigger: the answer says so, with a map.
    let ordinary: Vec<usize> = (0..r.ids.len())
        .filter(|i| !backdoored.contains(i) && r.labels[*i] == r.labels[0])
        .take(40)
        .collect();
    let f = trigger::find_in_selection(stack, &r.labels, &r.class_names, &ordinary).unwrap();
    assert!(f.trigger.is_none(), "{}", f.message);
    assert_eq!(f.map.len(), f.width * f.height);
    // Too few images is an answer, not a crash.
    let e =
        trigger::find_in_selection(stack, &r.labels, &r.class_names, &ordinary[..2]).unwrap_err();
    assert!(e.contains("too few"), "{e}");
}

/// A noisy image of `w × h`, grey or RGB, with a white 3×3 stamp near the
/// top-left corner (at 10% of the size) when `stamped`.
fn image(seed: u32, w: u32, h: u32, colour: bool, stamped: bool) -> DynamicImage {
    let v = |x: u32, y: u32| -> u8 {
        let (sx, sy) = (w / 10, h / 10);
        if stamped && (sx..sx + 3).contains(&x) && (sy..sy + 3).contains(&y) {
            return 255;
        }
        let n =
            (x.wrapping_mul(7919) ^ y.wrapping_mul(104729) ^ seed.wrapping_mul(2654435761)) % 97;
        (40 + n) as u8
    };
    if colour {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            let g = v(x, y);
            image::Rgb([g, g, g])
        }))
    } else {
        DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, y| image::Luma([v(x, y)])))
    }
}

#[test]
fn mixed_sizes_and_grey_with_colour_are_compared_at_one_size() {
    // 60 images, most 40×40 grey, some 48×40 RGB and 80×80 grey; 20 stamped.
    let thumbs: Vec<Thumb> = (0..60u32)
        .map(|i| {
            let (w, h, colour) = match i % 5 {
                0 => (48, 40, true),
                1 => (80, 80, false),
                _ => (40, 40, false),
            };
            thumb(&image(i, w, h, colour, i < 20), 64)
        })
        .collect();
    let refs: Vec<Option<&Thumb>> = thumbs.iter().map(Some).collect();
    let stack = ImageStack::from_thumbs(refs).unwrap();
    assert_eq!((stack.width, stack.height, stack.channels), (40, 40, 3));
    let group: Vec<usize> = (0..20).collect();
    let rest: Vec<usize> = (20..40).collect();
    let others: Vec<usize> = (40..60).collect();
    let loc = localize(&stack, &group, &rest, &others).unwrap();
    let p = loc.patch.expect("the stamp is found");
    assert!(iou(p.bbox, [4, 4, 6, 6]) >= 0.5, "{:?}", p.bbox);
    // Boxes map back to each image's own pixels.
    assert_eq!(stack.to_original(1, [4, 4, 6, 6]), [8, 8, 13, 13]);
}

#[test]
fn tiny_groups_and_unreadable_images_do_not_crash() {
    let thumbs: Vec<Thumb> = (0..12u32)
        .map(|i| thumb(&image(i, 28, 28, false, i < 3), 64))
        .collect();
    let mut refs: Vec<Option<&Thumb>> = thumbs.iter().map(Some).collect();
    refs[5] = None; // unreadable
    let stack = ImageStack::from_thumbs(refs).unwrap();
    assert!(!stack.valid[5]);
    assert!(
        localize(&stack, &[0, 1, 2], &[3, 4, 5], &[6, 7]).is_none(),
        "3 images: too few"
    );
    let labels = vec![0u32; 12];
    let cluster_of: Vec<u8> = (0..12).map(|i| u8::from(i < 3)).collect();
    let r = trigger::run(
        &stack,
        &labels,
        &cluster_of,
        &["a".to_string()],
        DEFAULT_FDR,
    );
    assert!(r.found.triggers.is_empty());
    assert!(
        ImageStack::from_thumbs::<Thumb>(vec![None, None]).is_none(),
        "no readable image"
    );
    // Odd shapes reduce without trouble.
    for (w, h) in [(300, 2), (2, 300), (65, 64), (1, 1)] {
        let t = thumb(&image(1, w, h, true, false), 64);
        assert!(
            t.width <= 64 && t.height <= 64 && t.data.len() == (t.width * t.height * 3) as usize
        );
    }
    // Large datasets get a smaller search size so the images fit in memory.
    assert_eq!(trigger_side(70_000), 64);
    assert_eq!(trigger_side(1_000_000), 18);
}

/// A 28×28 dark image with a bright block of `w × h` at (`x`, `y`), and a
/// 5×5 checkerboard (251 / 0, bright corners: 13 bright, 12 dark squares) at
/// (4, 5) when `stamped`.
fn checker_scene(x: u32, y: u32, w: u32, h: u32, stamped: bool) -> DynamicImage {
    DynamicImage::ImageLuma8(GrayImage::from_fn(28, 28, |px, py| {
        if stamped && (4..9).contains(&px) && (5..10).contains(&py) {
            return image::Luma([if (px + py) % 2 == 1 { 251 } else { 0 }]);
        }
        let inside = (x..x + w).contains(&px) && (y..y + h).contains(&py);
        image::Luma([if inside { 240 } else { 0 }])
    }))
}

#[test]
fn a_checkerboard_stamp_is_its_dark_squares_too() {
    // 20 stamped images; 200 others whose small bright blocks often
    // overlap the stamp's place. The map cancels the dark squares (the
    // background shares them), yet they are part of the stamp: the patch
    // found must hold them, or any bright area matches it. (Known limit:
    // an image half bright, half dark over the stamp's place half-matches
    // the whole checkerboard, and many such images still hide it; so does
    // a dark background when the dark squares are the majority.)
    let mut thumbs = Vec::new();
    for i in 0..220u32 {
        let (x, y) = (2 + (i * 7) % 9, 3 + (i * 11) % 9);
        let (w, h) = (2 + (i * 5) % 3, 2 + (i * 3) % 4);
        thumbs.push(thumb(&checker_scene(x, y, w, h, i < 20), 64));
    }
    let refs: Vec<Option<&Thumb>> = thumbs.iter().map(Some).collect();
    let stack = ImageStack::from_thumbs(refs).unwrap();
    let group: Vec<usize> = (0..20).collect();
    let rest: Vec<usize> = (20..120).collect();
    let others: Vec<usize> = (120..220).collect();
    let loc = localize(&stack, &group, &rest, &others).unwrap();
    let p = loc.patch.expect("the checkerboard is found");
    assert_eq!(p.bbox, [4, 5, 8, 9]);
    let dark_in_mask = (5..10)
        .flat_map(|y| (4..9).map(move |x| (x, y)))
        .filter(|&(x, y)| (x + y) % 2 == 0 && p.mask[y * 28 + x])
        .count();
    assert!(
        dark_in_mask >= 10,
        "the dark squares belong to the stamp ({dark_in_mask} of 12)"
    );
}
