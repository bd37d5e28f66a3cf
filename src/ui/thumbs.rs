//! Sample images for the UI: decoded on worker threads, uploaded as textures
//! on the UI thread, cached. A failed decode becomes a placeholder with the
//! reason, never a crash.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use egui::{ColorImage, TextureHandle, TextureOptions};

use crate::dataset::{Dataset, images};

/// A sample's image as the UI has it.
pub enum Thumb {
    /// Still decoding.
    Loading,
    /// Ready to draw (pixel size kept for nearest-neighbour zoom).
    Ready(TextureHandle, [usize; 2]),
    /// Could not be read; the reason is shown instead.
    Failed(String),
}

/// Cache of decoded images for one dataset.
pub struct Thumbs {
    dataset: Arc<Dataset>,
    cache: HashMap<usize, Thumb>,
    tx: Sender<(usize, Result<ColorImage, String>)>,
    rx: Receiver<(usize, Result<ColorImage, String>)>,
}

/// Largest number of decoded images kept.
const CAPACITY: usize = 2048;

impl Thumbs {
    /// An empty cache for `dataset`.
    pub fn new(dataset: Arc<Dataset>) -> Self {
        let (tx, rx) = channel();
        Thumbs {
            dataset,
            cache: HashMap::new(),
            tx,
            rx,
        }
    }

    /// The image of sample `i`, starting a background decode on first ask.
    pub fn get(&mut self, ctx: &egui::Context, i: usize) -> &Thumb {
        self.receive(ctx);
        if !self.cache.contains_key(&i) {
            if self.cache.len() >= CAPACITY {
                self.cache.retain(|_, t| matches!(t, Thumb::Loading));
            }
            if self.dataset.paths.is_none() {
                self.cache
                    .insert(i, Thumb::Failed("this dataset has no image files".into()));
            } else {
                self.cache.insert(i, Thumb::Loading);
                let (ds, tx, ctx) = (Arc::clone(&self.dataset), self.tx.clone(), ctx.clone());
                super::pool::spawn_on_window_threads(move || {
                    let r = images::load(&ds, i).map_err(|e| e.to_string()).map(|img| {
                        let rgba = img.to_rgba8();
                        ColorImage::from_rgba_unmultiplied(
                            [rgba.width() as usize, rgba.height() as usize],
                            rgba.as_raw(),
                        )
                    });
                    let _ = tx.send((i, r));
                    ctx.request_repaint();
                });
            }
        }
        &self.cache[&i]
    }

    /// Whether any decode is still running.
    pub fn busy(&self) -> bool {
        self.cache.values().any(|t| matches!(t, Thumb::Loading))
    }

    fn receive(&mut self, ctx: &egui::Context) {
        while let Ok((i, r)) = self.rx.try_recv() {
            let t = match r {
                Ok(img) => {
                    let size = img.size;
                    Thumb::Ready(
                        ctx.load_texture(format!("sample-{i}"), img, TextureOptions::NEAREST),
                        size,
                    )
                }
                Err(e) => Thumb::Failed(e),
            };
            self.cache.insert(i, t);
        }
    }
}
