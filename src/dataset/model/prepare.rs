//! Turning a decoded image into the values a model takes: resized to its
//! declared size, grey ↔ RGB as it expects, scaled and normalised, in its
//! layout — the same steps the user's training code applied, so the
//! activations are the ones the model really produces.

use image::DynamicImage;
use image::imageops::FilterType;

use super::graph::Layout;
use super::{InputSpec, ModelOptions};

/// Appends `img`'s prepared values (`spec.values_per_image()` of them) to `out`.
pub fn prepare_into(img: &DynamicImage, spec: &InputSpec, opts: &ModelOptions, out: &mut Vec<f32>) {
    let (w, h) = (spec.width as u32, spec.height as u32);
    let resized;
    let img = if img.width() == w && img.height() == h {
        img
    } else {
        resized = img.resize_exact(w, h, FilterType::Triangle);
        &resized
    };
    let pixels: Vec<u8> = if spec.channels == 1 {
        img.to_luma8().into_raw()
    } else {
        img.to_rgb8().into_raw()
    };
    let c = spec.channels;
    let value = |p: usize, ch: usize| {
        let v = pixels[p * c + ch] as f32 * opts.scale;
        match (&opts.mean, &opts.std) {
            (Some(m), Some(s)) => (v - m[ch]) / s[ch],
            (Some(m), None) => v - m[ch],
            (None, Some(s)) => v / s[ch],
            (None, None) => v,
        }
    };
    let n = spec.height * spec.width;
    match spec.layout {
        // Channel-major: every pixel of channel 0, then channel 1, …
        Layout::Nchw | Layout::Flat => {
            for ch in 0..c {
                out.extend((0..n).map(|p| value(p, ch)));
            }
        }
        // Pixel-major: each pixel's channels together (also one-channel NHW).
        Layout::Nhwc | Layout::Nhw => {
            for p in 0..n {
                out.extend((0..c).map(|ch| value(p, ch)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(layout: Layout, channels: usize) -> InputSpec {
        InputSpec {
            name: "x".into(),
            layout,
            channels,
            height: 2,
            width: 2,
            fixed_batch: None,
        }
    }

    /// A 2×2 RGB image whose pixel p has channel values (10p, 10p+1, 10p+2).
    fn rgb() -> DynamicImage {
        let mut img = image::RgbImage::new(2, 2);
        for (p, px) in img.pixels_mut().enumerate() {
            let b = 10 * p as u8;
            *px = image::Rgb([b, b + 1, b + 2]);
        }
        DynamicImage::ImageRgb8(img)
    }

    /// NCHW puts each channel's plane together, NHWC each pixel's channels.
    #[test]
    fn layouts_order_values_as_their_frameworks_do() {
        let opts = ModelOptions {
            scale: 1.0,
            ..ModelOptions::new("m.onnx")
        };
        let mut nchw = Vec::new();
        prepare_into(&rgb(), &spec(Layout::Nchw, 3), &opts, &mut nchw);
        assert_eq!(
            nchw,
            [0., 10., 20., 30., 1., 11., 21., 31., 2., 12., 22., 32.]
        );
        let mut nhwc = Vec::new();
        prepare_into(&rgb(), &spec(Layout::Nhwc, 3), &opts, &mut nhwc);
        assert_eq!(
            nhwc,
            [0., 1., 2., 10., 11., 12., 20., 21., 22., 30., 31., 32.]
        );
    }

    /// Mean and std apply per channel after the scale; grey images are
    /// repeated into three channels; sizes are matched.
    #[test]
    fn values_are_scaled_normalised_and_resized() {
        let opts = ModelOptions {
            scale: 0.5,
            mean: Some(vec![1.0, 2.0, 3.0]),
            std: Some(vec![2.0, 2.0, 2.0]),
            ..ModelOptions::new("m.onnx")
        };
        let grey = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(5, 7, image::Luma([20])));
        let mut v = Vec::new();
        prepare_into(&grey, &spec(Layout::Nchw, 3), &opts, &mut v);
        assert_eq!(v.len(), 12);
        assert_eq!(&v[..4], &[4.5; 4]); // (20 × 0.5 − 1) / 2
        assert_eq!(&v[4..8], &[4.0; 4]);
        assert_eq!(&v[8..], &[3.5; 4]);
    }
}
