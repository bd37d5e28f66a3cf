//! Speed of the trigger detector: localizing every class's candidate group
//! and scoring every image, on synthetic images with a planted 3×3 (28×28)
//! or 16×16 (224×224) patch.
//!
//! `cargo run --release --no-default-features --example bench_trigger`
//!
//! Two cases from issue #5: 70,000 greyscale 28×28 images, and 10,000 RGB
//! 224×224 images (reduced by 4×4 averaging to 56×56 for the search, as the
//! scan does; the reduction is timed separately). All planted images come
//! from one source class, the hard case: the group also shares that class's
//! look, and only the stamp is specific to it. Decoding files is not
//! included: the scan decodes each image once for all image checks.

use std::time::Instant;

use image::{DynamicImage, GrayImage, RgbImage};
use poisonlens::dataset::images::{thumb, trigger_side};
use poisonlens::detect::DEFAULT_FDR;
use poisonlens::detect::trigger::{self, ImageStack};
use poisonlens::linalg::XorShift;
use rayon::prelude::*;

fn main() {
    for (n, side, colour, patch) in [(70_000usize, 28u32, false, 3u32), (10_000, 224, true, 16)] {
        let classes = 10;
        let mut rng = XorShift::new(7);
        let t = Instant::now();
        let mut labels = Vec::with_capacity(n);
        let mut cluster_of = Vec::with_capacity(n);
        let images: Vec<DynamicImage> = (0..n)
            .map(|i| {
                let class = (i % classes) as u32;
                // Poison: every 20th non-target image gets the patch and label 0.
                let poisoned = i % 20 == 3;
                labels.push(if poisoned { 0 } else { class });
                cluster_of.push(u8::from(poisoned || (class == 5 && i % 7 == 0)));
                make_image(
                    &mut rng,
                    side,
                    colour,
                    class as usize,
                    poisoned.then_some(patch),
                )
            })
            .collect();
        let made = t.elapsed();
        let t = Instant::now();
        let side_max = trigger_side(n);
        let thumbs: Vec<_> = images.par_iter().map(|i| thumb(i, side_max)).collect();
        let reduce = t.elapsed();
        drop(images);
        let refs: Vec<Option<&_>> = thumbs.iter().map(Some).collect();
        let t = Instant::now();
        let stack = ImageStack::from_thumbs(refs).expect("stack");
        let stacked = t.elapsed();
        let names: Vec<String> = (0..classes).map(|c| format!("class{c}")).collect();
        let mut best = f64::INFINITY;
        let mut found = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let r = trigger::run(&stack, &labels, &cluster_of, &names, DEFAULT_FDR);
            best = best.min(t.elapsed().as_secs_f64());
            found = r.detector.flagged.iter().filter(|&&f| f).count();
            if std::env::var("DEBUG_BENCH").is_ok() {
                let mut hist = [0usize; 20];
                for (i, &f) in r.detector.flagged.iter().enumerate() {
                    if f {
                        hist[i % 20] += 1;
                    }
                }
                eprintln!(
                    "flagged by i % 20: {hist:?}; {:?}",
                    r.found
                        .triggers
                        .iter()
                        .map(|t| &t.summary)
                        .collect::<Vec<_>>()
                );
            }
            let found: Vec<String> = r
                .found
                .triggers
                .iter()
                .map(|t| format!("class {}: {}", t.class, t.summary))
                .collect();
            assert_eq!(found.len(), 1, "one planted trigger: {found:#?}");
            let flagged = r.detector.flagged.iter().enumerate().filter(|(_, f)| **f);
            assert!(
                flagged.clone().all(|(i, _)| i % 20 == 3),
                "only planted images flagged"
            );
        }
        println!(
            "{n} images {side}×{side} {}: localize + score {best:.2} s (best of 3), {found} carriers flagged of {}; reducing to {}×{} {:.2} s (2 threads), stacking {:.2} s (making the images {:.1} s)",
            if colour { "RGB" } else { "grey" },
            n / 20,
            stack.width,
            stack.height,
            reduce.as_secs_f64(),
            stacked.as_secs_f64(),
            made.as_secs_f64()
        );
    }
}

/// A noisy class-specific blob, with a white patch near a corner if asked.
fn make_image(
    rng: &mut XorShift,
    side: u32,
    colour: bool,
    class: usize,
    patch: Option<u32>,
) -> DynamicImage {
    let c = side as f32 / 2.0;
    let r = side as f32 * (0.2 + 0.02 * class as f32);
    let px = |x: u32, y: u32, rng: &mut XorShift| -> u8 {
        let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt();
        let base: f32 = if d < r { 180.0 } else { 10.0 };
        let v = base + 40.0 * (rng.uniform() - 0.5);
        let at = side / 14;
        if let Some(p) = patch
            && (at..at + p).contains(&x)
            && (at..at + p).contains(&y)
        {
            return 255;
        }
        v.clamp(0.0, 255.0) as u8
    };
    if colour {
        let mut img = RgbImage::new(side, side);
        for (x, y, p) in img.enumerate_pixels_mut() {
            let v = px(x, y, rng);
            *p = image::Rgb([v, v.saturating_sub(20), v / 2 + (class as u8) * 5]);
        }
        DynamicImage::ImageRgb8(img)
    } else {
        let mut img = GrayImage::new(side, side);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Luma([px(x, y, rng)]);
        }
        DynamicImage::ImageLuma8(img)
    }
}
