//! Every image at one common size and channel count, in one buffer: what
//! the trigger search compares pixel by pixel. Mixed sizes are resized to the
//! most common size, grey images are repeated into RGB when any image has
//! colour, and unreadable images are marked invalid rather than dropped, so
//! indices stay sample indices.

use std::borrow::Borrow;

use image::{ImageBuffer, Luma, Rgb, imageops::FilterType};

use crate::dataset::images::{ImageDigest, Thumb};

/// The step between two values of an image (byte offsets in it): 0 where
/// the image is flat there. A pattern added in place leaves the same steps
/// in every image carrying it ([`super::super::fixed_pattern`]). A step
/// from [`PixelStep::ZERO`] is the value itself (a stamp replaces values,
/// so its own are exact too; 0 = black).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PixelStep {
    /// Offset of the first value ([`PixelStep::ZERO`]: none, the step is
    /// the second value itself).
    pub from: u32,
    /// Offset of the second (the neighbour across or below).
    pub to: u32,
}

impl PixelStep {
    /// `from` of a step that is a value itself (from zero).
    pub const ZERO: u32 = u32::MAX;

    /// The step's value in `img` (wrapped difference; 0 = flat).
    pub fn of(self, img: &[u8]) -> u8 {
        let from = if self.from == Self::ZERO {
            0
        } else {
            img[self.from as usize]
        };
        img[self.to as usize].wrapping_sub(from)
    }

    /// The byte offsets the step reads.
    pub fn offsets(self) -> impl Iterator<Item = u32> {
        [self.from, self.to]
            .into_iter()
            .filter(|&o| o != Self::ZERO)
    }
}

/// Images at a common size.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ImageStack {
    /// Width of every image.
    pub width: usize,
    /// Height of every image.
    pub height: usize,
    /// Channels (1 or 3).
    pub channels: usize,
    /// `n × height × width × channels` bytes.
    #[serde(with = "crate::packed::u8s")]
    pub data: Vec<u8>,
    /// Whether sample i's image could be read.
    pub valid: Vec<bool>,
    /// Each sample's original width and height (0 when unreadable).
    pub original: Vec<[u32; 2]>,
}

#[cfg(test)]
impl ImageStack {
    /// `data` as readable grey `w`×`h` images (tests' synthetic stacks).
    pub(crate) fn grey(w: usize, h: usize, data: Vec<u8>) -> ImageStack {
        let n = data.len() / (w * h);
        ImageStack {
            width: w,
            height: h,
            channels: 1,
            data,
            valid: vec![true; n],
            original: vec![[w as u32, h as u32]; n],
        }
    }
}

impl ImageStack {
    /// Builds the stack from the scan's image digests, taking their
    /// thumbnails (each is freed as soon as it is copied, so the images are
    /// not held twice); None when no image could be read.
    pub fn from_digests(digests: &mut [Result<ImageDigest, String>]) -> Option<ImageStack> {
        let thumbs = digests
            .iter_mut()
            .map(|d| d.as_mut().ok().map(|d| std::mem::take(&mut d.thumb)))
            .collect();
        Self::from_thumbs(thumbs)
    }

    /// Builds the stack from thumbnails (None = unreadable), owned or
    /// borrowed; owned ones are dropped one by one as they are copied.
    pub fn from_thumbs<T: Borrow<Thumb>>(thumbs: Vec<Option<T>>) -> Option<ImageStack> {
        let mut sizes: std::collections::HashMap<(u32, u32), usize> = Default::default();
        let mut colour = false;
        for t in thumbs.iter().flatten() {
            let t = t.borrow();
            *sizes.entry((t.width, t.height)).or_default() += 1;
            colour |= t.channels == 3;
        }
        let (&(w, h), _) = sizes
            .iter()
            .max_by_key(|(k, n)| (**n, std::cmp::Reverse(**k)))?;
        let channels = if colour { 3 } else { 1 };
        let px = (w * h) as usize * channels;
        let n = thumbs.len();
        let mut data = vec![0u8; n * px];
        let mut valid = vec![false; n];
        let mut original = vec![[0, 0]; n];
        for (i, t) in thumbs.into_iter().enumerate() {
            let Some(t) = t else { continue };
            let t = t.borrow();
            valid[i] = true;
            original[i] = t.original;
            let out = &mut data[i * px..(i + 1) * px];
            if (t.width, t.height, t.channels as usize) == (w, h, channels) {
                out.copy_from_slice(&t.data);
            } else {
                out.copy_from_slice(&conform(t, w, h, channels));
            }
        }
        Some(ImageStack {
            width: w as usize,
            height: h as usize,
            channels,
            data,
            valid,
            original,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.valid.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.valid.is_empty()
    }

    /// Values per image.
    pub fn image_len(&self) -> usize {
        self.width * self.height * self.channels
    }

    /// Sample i's pixels.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.data[i * n..(i + 1) * n]
    }

    /// Maps a box in stack pixels (inclusive corners) to sample i's own pixels.
    pub fn to_original(&self, i: usize, b: [u32; 4]) -> [u32; 4] {
        let [ow, oh] = self.original[i];
        if ow as usize == self.width && oh as usize == self.height {
            return b;
        }
        let sx = ow as f32 / self.width as f32;
        let sy = oh as f32 / self.height as f32;
        [
            (b[0] as f32 * sx).floor() as u32,
            (b[1] as f32 * sy).floor() as u32,
            (((b[2] + 1) as f32 * sx).ceil() as u32)
                .saturating_sub(1)
                .min(ow.saturating_sub(1)),
            (((b[3] + 1) as f32 * sy).ceil() as u32)
                .saturating_sub(1)
                .min(oh.saturating_sub(1)),
        ]
    }
}

/// A thumbnail at `w × h` with `channels` channels.
fn conform(t: &Thumb, w: u32, h: u32, channels: usize) -> Vec<u8> {
    let same_size = t.width == w && t.height == h;
    let pixels: Vec<u8> = match (t.channels, same_size) {
        (_, true) => t.data.clone(),
        (3, false) => {
            let img: ImageBuffer<Rgb<u8>, _> =
                ImageBuffer::from_raw(t.width, t.height, t.data.clone()).expect("thumb size");
            image::imageops::resize(&img, w, h, FilterType::Triangle).into_raw()
        }
        (_, false) => {
            let img: ImageBuffer<Luma<u8>, _> =
                ImageBuffer::from_raw(t.width, t.height, t.data.clone()).expect("thumb size");
            image::imageops::resize(&img, w, h, FilterType::Triangle).into_raw()
        }
    };
    if channels == 3 && t.channels == 1 {
        pixels.iter().flat_map(|&v| [v, v, v]).collect()
    } else {
        pixels
    }
}
