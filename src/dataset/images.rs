//! Lazy image access. Images are decoded only when something needs their
//! pixels (a thumbnail, pixel features, duplicate hashing), one at a time, so a
//! million-file dataset opens without reading them.

use image::{DynamicImage, GenericImageView};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::{Dataset, SampleFiles, files};
use crate::error::{Error, Result};
use crate::linalg::Matrix;

/// Side of the grayscale thumbnail used for pixel features and hashing.
pub const FEATURE_SIDE: u32 = 16;

/// The input view of an image, as independent of how it was rendered as
/// cheap features allow: the object's contrast to its background (the
/// border's median), scaled to its own 99th percentile (so tint, brightness
/// and background colour drop out), cropped to a square around the middle
/// 96% of that contrast mass (so position and scale drop out) and averaged
/// down to [`FEATURE_SIDE`]² cells. Poison that relabels an image keeps how
/// it looks, so in this view it sits with its source class.
pub fn input_view(gray: &image::GrayImage) -> Vec<f32> {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let side = FEATURE_SIDE as usize;
    if w == 0 || h == 0 {
        return vec![0.0; side * side];
    }
    let px = gray.as_raw();
    let mut border: Vec<u8> = (0..w)
        .flat_map(|x| [px[x], px[(h - 1) * w + x]])
        .chain((0..h).flat_map(|y| [px[y * w], px[y * w + w - 1]]))
        .collect();
    let mid = border.len() / 2;
    let bg = *border.select_nth_unstable(mid).1 as f32;
    // Contrast is a whole number 0..=255, so its 99th percentile comes
    // from a histogram (no sort).
    let contrast: Vec<u8> = px.iter().map(|&v| (v as f32 - bg).abs() as u8).collect();
    let top = f32::from(nth_smallest(
        &contrast,
        ((px.len() - 1) as f64 * 0.99) as usize,
    ))
    .max(1.0);
    let f: Vec<f32> = contrast
        .iter()
        .map(|&v| (f32::from(v) / top).min(1.0))
        .collect();
    let (x0, x1) = mass_range((0..w).map(|x| (0..h).map(|y| f[y * w + x]).sum()));
    let (y0, y1) = mass_range((0..h).map(|y| f[y * w..(y + 1) * w].iter().sum()));
    let extent = (x1 - x0).max(y1 - y0).max(1.0);
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let cell = extent / side as f32;
    // Each cell averages a 4×4 grid of nearest-pixel samples (outside = 0);
    // a sample's column depends only on (ox, sx) and its row on (oy, sy).
    let xs = sample_positions(cx - extent / 2.0, cell, side, w);
    let ys = sample_positions(cy - extent / 2.0, cell, side, h);
    // Each cell's sum takes its samples in the same order as a cell-by-cell
    // loop would (row by row, then along the row), but a sampled image row
    // is walked once for all cells of an output row.
    let mut out = vec![0f32; side * side];
    for (oy, row) in out.chunks_mut(side).enumerate() {
        for &y in ys[oy * SUB..(oy + 1) * SUB].iter().flatten() {
            let pixels = &f[y * w..(y + 1) * w];
            for (ox, sum) in row.iter_mut().enumerate() {
                for &x in xs[ox * SUB..(ox + 1) * SUB].iter().flatten() {
                    *sum += pixels[x];
                }
            }
        }
        row.iter_mut().for_each(|v| *v /= (SUB * SUB) as f32);
    }
    out
}

/// Nearest-pixel samples per output cell along one axis of [`input_view`].
const SUB: usize = 4;

/// The pixel index of each of the `SUB` samples of each of `cells` cells
/// along one axis (starting at `start`, `cell` pixels a cell); None where a
/// sample falls outside the `len` pixels.
fn sample_positions(start: f32, cell: f32, cells: usize, len: usize) -> Vec<Option<usize>> {
    (0..cells * SUB)
        .map(|k| {
            let (o, s) = (k / SUB, k % SUB);
            let x = start + (o as f32 + (s as f32 + 0.5) / SUB as f32) * cell;
            (x >= 0.0 && (x as usize) < len).then_some(x as usize)
        })
        .collect()
}

/// The `q`-th smallest of `values` (0-based), by counting.
fn nth_smallest(values: &[u8], q: usize) -> u8 {
    let mut hist = [0usize; 256];
    for &v in values {
        hist[v as usize] += 1;
    }
    let mut seen = 0;
    for (v, &c) in hist.iter().enumerate() {
        seen += c;
        if seen > q {
            return v as u8;
        }
    }
    u8::MAX
}

/// Where the middle 96% of a profile's mass lies (pixel coordinates, the
/// end exclusive); the whole range when it has no mass.
fn mass_range(profile: impl Iterator<Item = f32>) -> (f32, f32) {
    let p: Vec<f32> = profile.collect();
    let total: f32 = p.iter().sum();
    if total <= 0.0 {
        return (0.0, p.len() as f32);
    }
    let (mut acc, mut lo, mut hi) = (0.0, None, p.len());
    for (i, v) in p.iter().enumerate() {
        acc += v;
        if lo.is_none() && acc >= 0.02 * total {
            lo = Some(i);
        }
        if acc >= 0.98 * total {
            hi = i + 1;
            break;
        }
    }
    (lo.unwrap_or(0) as f32, hi as f32)
}

/// Largest image file read, in bytes.
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// Most pixels decoded from one image (8192×8192). The scan looks at images
/// of at most [`TRIGGER_SIDE`] pixels a side and the workbench at a screen's
/// worth, so a larger image is refused from its header — a 3 MB JPEG that
/// claims 16000×16000 would otherwise take gigabytes to decode.
pub const MAX_IMAGE_PIXELS: u64 = 1 << 26;

/// Decodes sample `i`'s image, refusing paths outside the dataset folder.
pub fn load(ds: &Dataset, i: usize) -> Result<DynamicImage> {
    decode_sample(&ds.files(), i)
}

/// Decodes sample `i`'s image, read through `files` (its path and its open
/// handle checked to lie inside the dataset folder).
pub fn decode_sample(files: &SampleFiles, i: usize) -> Result<DynamicImage> {
    let (path, bytes) = files.read(i, MAX_IMAGE_BYTES, "an image")?;
    decode_bytes(&path, &bytes)
}

/// Decodes an image file: only a regular file of at most
/// [`MAX_IMAGE_BYTES`], only when its header claims at most
/// [`MAX_IMAGE_PIXELS`], and with the decoder's own allocation limit set.
pub fn decode_file(path: &std::path::Path) -> Result<DynamicImage> {
    decode_bytes(
        path,
        &files::read_capped(path, MAX_IMAGE_BYTES, "an image")?,
    )
}

/// Decodes an image file's bytes (`path` names it in messages): refused
/// when the header claims more than [`MAX_IMAGE_PIXELS`], decoded with the
/// decoder's own allocation limit.
pub fn decode_bytes(path: &std::path::Path, bytes: &[u8]) -> Result<DynamicImage> {
    let undecodable = |e: image::ImageError| Error::file(path, format!("cannot decode image: {e}"));
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::io(path, e))
    };
    let (w, h) = files::without_panics(path, "image", || {
        reader()?.into_dimensions().map_err(undecodable)
    })??;
    if u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS {
        return Err(Error::file(
            path,
            format!(
                "image is {w}×{h} pixels; poisonlens decodes images of up to {} megapixels",
                MAX_IMAGE_PIXELS >> 20
            ),
        ));
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_IMAGE_PIXELS * 8);
    let mut r = reader()?;
    r.limits(limits);
    files::without_panics(path, "image", || r.decode())?.map_err(undecodable)
}

/// What the scan needs from one image, from a single decode.
#[derive(Debug, Clone)]
pub struct ImageDigest {
    /// SHA-256 of the decoded pixels ([`pixel_hash`]), so re-encoded copies match.
    pub pixel_hash: [u8; 32],
    /// The image's input view ([`input_view`]): 16×16 values in 0..1 that
    /// do not come from the suspect model — the second opinion on labels and
    /// the fallback features when no embeddings are given.
    pub features: Vec<f32>,
    /// The image at up to [`trigger_side`] pixels a side, for trigger search.
    pub thumb: Thumb,
}

/// Longest side kept for trigger search: small images stay pixel-exact (a
/// 3×3 patch on a 28×28 image stays 3×3), large ones are reduced.
pub const TRIGGER_SIDE: u32 = 64;

/// Memory the trigger search's images may take, all samples together.
pub const TRIGGER_BUDGET: u64 = 1 << 30;

/// Longest side for trigger search in a dataset of `n` images: 64 pixels,
/// less when `n` RGB images of that size would exceed [`TRIGGER_BUDGET`]
/// (from ~87,000 images on), never under 16.
pub fn trigger_side(n: usize) -> u32 {
    let fit = ((TRIGGER_BUDGET / (3 * n.max(1) as u64)) as f64).sqrt() as u32;
    fit.clamp(16, TRIGGER_SIDE)
}

/// A small copy of an image, grey or RGB, row-major, 8 bits per channel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thumb {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 1 (grey) or 3 (RGB).
    pub channels: u8,
    /// The pixels.
    pub data: Vec<u8>,
    /// The original image's width and height, to map boxes back.
    pub original: [u32; 2],
}

/// Reduces an image to a [`Thumb`] of at most `max_side` pixels a side,
/// keeping its own size when it is small.
pub fn thumb(img: &DynamicImage, max_side: u32) -> Thumb {
    let (w, h) = img.dimensions();
    let (channels, data) = if img.color().has_color() {
        (3u8, img.to_rgb8().into_raw())
    } else {
        (1u8, img.to_luma8().into_raw())
    };
    let t = Thumb {
        width: w,
        height: h,
        channels,
        data,
        original: [w, h],
    };
    let longest = w.max(h).max(1);
    if longest <= max_side {
        return t;
    }
    // Average k×k blocks, k the smallest whole factor that fits: cheap, and a
    // stamp keeps its mean value (a 224-pixel image becomes 56 pixels).
    box_average(&t, longest.div_ceil(max_side))
}

/// Averages `k`×`k` blocks (a partial block at the edge is dropped).
fn box_average(t: &Thumb, k: u32) -> Thumb {
    let c = t.channels as usize;
    let (w, h, k) = (t.width as usize, t.height as usize, k as usize);
    let (nw, nh) = ((w / k).max(1), (h / k).max(1));
    let k = k.min(w).min(h);
    let n = (k * k) as u32;
    let mut out = Vec::with_capacity(nw * nh * c);
    let mut sum = vec![0u32; nw * c];
    for block_rows in t
        .data
        .chunks_exact(w * c)
        .take(nh * k)
        .collect::<Vec<_>>()
        .chunks(k)
    {
        sum.iter_mut().for_each(|s| *s = 0);
        for row in block_rows {
            for (bx, block) in row[..nw * k * c].chunks_exact(k * c).enumerate() {
                let acc = &mut sum[bx * c..(bx + 1) * c];
                for px in block.chunks_exact(c) {
                    for (a, &v) in acc.iter_mut().zip(px) {
                        *a += v as u32;
                    }
                }
            }
        }
        out.extend(sum.iter().map(|&s| ((s + n / 2) / n) as u8));
    }
    Thumb {
        width: nw as u32,
        height: nh as u32,
        channels: t.channels,
        data: out,
        original: t.original,
    }
}

/// Computes the digest of one decoded image (`thumb_side`: see [`trigger_side`]).
pub fn digest(img: &DynamicImage, thumb_side: u32) -> ImageDigest {
    let gray = img.to_luma8();
    ImageDigest {
        pixel_hash: pixel_hash(img),
        features: input_view(&gray),
        thumb: thumb(img, thumb_side),
    }
}

/// SHA-256 of an image's size and pixels in one canonical form, so a copy
/// saved in another format or colour type hashes the same: an opaque image
/// whose every pixel is grey hashes its grey values (a quarter of the bytes
/// — most of a grey dataset's hashing time), any other its RGBA values.
pub fn pixel_hash(img: &DynamicImage) -> [u8; 32] {
    let (w, h) = img.dimensions();
    let mut hasher = Sha256::new();
    hasher.update(w.to_le_bytes());
    hasher.update(h.to_le_bytes());
    if let DynamicImage::ImageLuma8(g) = img {
        hasher.update(b"L");
        hasher.update(g.as_raw());
        return hasher.finalize().into();
    }
    let rgba = img.to_rgba8();
    let opaque_grey = rgba
        .as_raw()
        .chunks_exact(4)
        .all(|p| p[0] == p[1] && p[1] == p[2] && p[3] == u8::MAX);
    if opaque_grey {
        hasher.update(b"L");
        let grey: Vec<u8> = rgba.as_raw().chunks_exact(4).map(|p| p[0]).collect();
        hasher.update(&grey);
    } else {
        hasher.update(b"RGBA");
        hasher.update(rgba.as_raw());
    }
    hasher.finalize().into()
}

/// Digests every image in parallel. A sample whose file is missing, refused
/// or corrupt gets `Err(reason)`; the others are unaffected.
pub fn digest_all(
    ds: &Dataset,
    progress: &(dyn Fn(usize) + Sync),
) -> Vec<Result<ImageDigest, String>> {
    let done = std::sync::atomic::AtomicUsize::new(0);
    let side = trigger_side(ds.len());
    let files = ds.files();
    (0..ds.len())
        .into_par_iter()
        .map(|i| {
            let r = decode_sample(&files, i)
                .map(|img| digest(&img, side))
                .map_err(|e| e.to_string());
            let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if k.is_multiple_of(1024) {
                progress(k);
            }
            r
        })
        .collect()
}

/// Pixel features for datasets without embeddings; unreadable images get the
/// mean feature vector so they neither crash nor dominate the scan.
pub fn pixel_features(digests: &[Result<ImageDigest, String>]) -> Option<Matrix> {
    let d = (FEATURE_SIDE * FEATURE_SIDE) as usize;
    if digests.iter().all(|r| r.is_err()) {
        return None;
    }
    let mut data = Vec::with_capacity(digests.len() * d);
    let mut unreadable = Vec::new();
    for (i, r) in digests.iter().enumerate() {
        match r {
            Ok(g) => data.extend_from_slice(&g.features),
            Err(_) => {
                data.resize(data.len() + d, 0.0);
                unreadable.push(i);
            }
        }
    }
    let mut m = Matrix::new(digests.len(), d, data);
    m.fill_rows_with_mean(&unreadable);
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Degenerate images (one pixel, one value everywhere, a line, a huge
    /// flat border) give a finite view of the right size, never a panic.
    #[test]
    fn input_view_of_degenerate_images_is_finite() {
        let cases = [
            image::GrayImage::new(1, 1),
            image::GrayImage::from_pixel(28, 28, image::Luma([255])),
            image::GrayImage::from_fn(300, 1, |x, _| image::Luma([(x % 256) as u8])),
            image::GrayImage::from_fn(64, 64, |x, y| {
                image::Luma([if x == 40 && y == 9 { 255 } else { 7 }])
            }),
        ];
        for g in &cases {
            let v = input_view(g);
            assert_eq!(v.len(), (FEATURE_SIDE * FEATURE_SIDE) as usize);
            assert!(v.iter().all(|x| x.is_finite() && (0.0..=1.0).contains(x)));
        }
    }

    /// The view ignores where the object is and how bright its background
    /// is: the same shape moved and on another background looks the same.
    #[test]
    fn input_view_drops_position_and_background() {
        let shape = |dx: u32, bg: u8| {
            image::GrayImage::from_fn(40, 40, |x, y| {
                let (x, y) = (x as i32 - dx as i32, y as i32);
                let inside = (8..20).contains(&x) && (10..30).contains(&y);
                image::Luma([if inside { bg.saturating_add(150) } else { bg }])
            })
        };
        let a = input_view(&shape(0, 0));
        let b = input_view(&shape(12, 60));
        let diff: f32 = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).sum::<f32>() / a.len() as f32;
        assert!(diff < 0.02, "mean difference {diff}");
    }
    /// A copy of an image saved as grey, RGB or RGBA (opaque) hashes the
    /// same; a coloured or translucent change does not.
    #[test]
    fn pixel_hash_ignores_the_colour_type_of_a_grey_image() {
        let g = image::GrayImage::from_fn(28, 28, |x, y| image::Luma([(x * 9 + y) as u8]));
        let grey = DynamicImage::ImageLuma8(g.clone());
        let rgb = DynamicImage::ImageRgb8(DynamicImage::ImageLuma8(g.clone()).to_rgb8());
        let rgba = DynamicImage::ImageRgba8(grey.to_rgba8());
        assert_eq!(pixel_hash(&grey), pixel_hash(&rgb));
        assert_eq!(pixel_hash(&grey), pixel_hash(&rgba));
        let mut tinted = rgb.to_rgb8();
        tinted.put_pixel(3, 4, image::Rgb([10, 11, 10]));
        assert_ne!(
            pixel_hash(&rgb),
            pixel_hash(&DynamicImage::ImageRgb8(tinted))
        );
        let mut see_through = rgba.to_rgba8();
        see_through.put_pixel(3, 4, image::Rgba([39, 39, 39, 200]));
        assert_ne!(
            pixel_hash(&rgba),
            pixel_hash(&DynamicImage::ImageRgba8(see_through))
        );
        let wider = image::GrayImage::from_raw(56, 14, g.into_raw()).unwrap();
        assert_ne!(
            pixel_hash(&grey),
            pixel_hash(&DynamicImage::ImageLuma8(wider))
        );
    }

    /// Degenerate and unusual decodes (no pixels, one pixel, grey with
    /// alpha, 16-bit grey) hash without a panic, and a 16-bit or
    /// grey-alpha copy of an opaque grey image hashes as the 8-bit one.
    #[test]
    fn pixel_hash_of_odd_images() {
        for img in [
            DynamicImage::ImageLuma8(image::GrayImage::new(0, 0)),
            DynamicImage::ImageRgba8(image::RgbaImage::new(0, 7)),
            DynamicImage::ImageRgb8(image::RgbImage::new(1, 1)),
        ] {
            let _ = pixel_hash(&img);
        }
        assert_ne!(
            pixel_hash(&DynamicImage::ImageLuma8(image::GrayImage::new(0, 0))),
            pixel_hash(&DynamicImage::ImageLuma8(image::GrayImage::new(0, 7)))
        );
        let g = image::GrayImage::from_fn(5, 3, |x, y| image::Luma([(x * 40 + y) as u8]));
        let wide = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(5, 3, |x, y| {
            image::Luma([g.get_pixel(x, y)[0] as u16 * 257])
        });
        let with_alpha = DynamicImage::ImageLuma8(g.clone()).to_luma_alpha8();
        let grey = pixel_hash(&DynamicImage::ImageLuma8(g));
        assert_eq!(grey, pixel_hash(&DynamicImage::ImageLuma16(wide)));
        assert_eq!(grey, pixel_hash(&DynamicImage::ImageLumaA8(with_alpha)));
    }

    /// The counting percentile agrees with sorting.
    #[test]
    fn nth_smallest_matches_a_sort() {
        let v: Vec<u8> = (0..997u32).map(|i| (i * 7919 % 251) as u8).collect();
        let mut sorted = v.clone();
        sorted.sort_unstable();
        for q in [0, 1, 500, 986, 996] {
            assert_eq!(nth_smallest(&v, q), sorted[q]);
        }
    }
}
