//! A scatter plot that stays fluid at a million points. With few points on
//! screen every point is drawn; past [`RASTER_LIMIT`] visible points the view
//! draws a density raster instead — each screen cell coloured by the mean
//! colour of its points, opacity by log density — rebuilt only when the view
//! or the data change, so panning costs one pass over the points, not a
//! million shapes.

use egui::{Color32, ColorImage, TextureHandle, TextureOptions};
use egui_plot::{
    Corner, Legend, MarkerShape, Plot, PlotBounds, PlotImage, PlotPoint, Points, Polygon,
};
use rayon::prelude::*;

/// Visible points above which the raster is drawn instead of markers.
pub const RASTER_LIMIT: usize = 20_000;
/// Screen pixels per raster cell.
const CELL_PX: f32 = 3.0;
/// Pixels within which a click picks a point.
const PICK_RADIUS: f32 = 8.0;

/// What to draw.
pub struct ScatterInput<'a> {
    /// Point positions.
    pub points: &'a [[f32; 2]],
    /// Colour group of each point; `u16::MAX` draws it dimmed (filtered out).
    pub group: &'a [u16],
    /// Group names, for the legend.
    pub names: &'a [String],
    /// Group colours.
    pub colors: &'a [Color32],
    /// A point to mark (the current sample).
    pub highlight: Option<usize>,
    /// Points to ring (a selection).
    pub selection: &'a [usize],
    /// Changes whenever `group`/`colors` change, so the raster is rebuilt.
    pub generation: u64,
}

/// What the user did this frame.
#[derive(Debug, Default)]
pub struct ScatterOutput {
    /// A point was clicked (reported once the double-click time has passed
    /// without a second click: a double-click resets the view and selects
    /// nothing).
    pub clicked: Option<usize>,
    /// A Shift+drag box or Ctrl+drag lasso selected these points.
    pub box_selected: Option<Vec<usize>>,
    /// Whether the raster was used this frame.
    pub rasterized: bool,
    /// The part of the plane shown this frame (x0, y0, x1, y1).
    pub view: [f64; 4],
}

#[derive(Clone)]
struct RasterCache {
    key: (u64, [i64; 4], [u32; 2], u64),
    texture: TextureHandle,
}

/// How much one point of wheel movement zooms (e-fold per 200 points:
/// one notch of a mouse wheel, about 50 points, zooms by about a quarter).
const WHEEL_ZOOM_PER_POINT: f32 = 1.0 / 200.0;

/// The wheel zooms around the pointer, as in every map and scatter tool
/// (egui_plot's own wheel pans; dragging pans here). Ctrl+wheel and pinch
/// zoom through egui_plot as before.
fn zoom_with_the_wheel(plot: &mut egui_plot::PlotUi<'_>) {
    let wheel = plot.ctx().input(|i| i.smooth_scroll_delta.y);
    if wheel != 0.0 && plot.response().contains_pointer() {
        let factor = (wheel * WHEEL_ZOOM_PER_POINT).exp();
        plot.zoom_bounds_around_hovered(egui::Vec2::splat(factor));
    }
}

/// The box or lasso being dragged: a white outline over a light veil, seen
/// on any colouring (the default outline was barely visible); unnamed, so
/// it is not listed in the legend.
fn selecting(path: Vec<[f64; 2]>) -> Polygon<'static> {
    Polygon::new("", path)
        .stroke(egui::Stroke::new(1.5, Color32::WHITE))
        .fill_color(Color32::from_white_alpha(28))
}

/// Draws the plot and reports clicks, hover and box selections.
pub fn show(
    ui: &mut egui::Ui,
    id: &str,
    input: &ScatterInput,
    hover_ui: impl FnOnce(&mut egui::Ui, usize),
) -> ScatterOutput {
    let mut out = ScatterOutput::default();
    let (shift, lasso) =
        ui.input(|i| (i.modifiers.shift, i.modifiers.command && !i.modifiers.shift));
    let lasso_id = ui.scope_id().with((id, "lasso_path"));
    let drag_id = ui.scope_id().with((id, "box_select_start"));
    let cache_id = ui.scope_id().with((id, "raster"));
    let pending_id = ui.scope_id().with((id, "pending_click"));
    let n = input.points.len();
    let radius = if n > 5_000 { 1.5 } else { 2.5 };
    let resp = Plot::new(id)
        .legend(
            // In the order the groups are given (classes, then suspicion
            // bins low to high), not sorted as text ("< 0.25" last).
            Legend::default()
                .follow_insertion_order(true)
                .position(Corner::LeftTop)
                .background_alpha(0.85),
        )
        .data_aspect(1.0)
        .allow_drag(!shift && !lasso)
        .allow_boxed_zoom(false)
        .allow_scroll(false)
        .show_axes(false)
        .show(ui, |plot| {
            zoom_with_the_wheel(plot);
            let b = plot.plot_bounds();
            out.view = [b.min()[0], b.min()[1], b.max()[0], b.max()[1]];
            let rect = plot.response().rect;
            let area = more_visible_than(input.points, &b, RASTER_LIMIT)
                .then(|| {
                    let sorted = spatially_sorted(plot.ctx(), cache_id, input);
                    raster_area(&b, sorted.2, rect.size())
                })
                .flatten();
            if let Some((b, size)) = area {
                let key = (
                    input.generation,
                    [b.min()[0], b.min()[1], b.max()[0], b.max()[1]].map(|v| (v * 1e9) as i64),
                    size,
                    n as u64,
                );
                let ctx = plot.ctx().clone();
                let cached: Option<RasterCache> = ctx.data(|d| d.get_temp(cache_id));
                let texture = match cached {
                    Some(c) if c.key == key => c.texture,
                    other => {
                        let sorted = spatially_sorted(&ctx, cache_id, input);
                        let colors = input.colors;
                        let img = super::pool::on_window_threads(|| {
                            density_raster(&sorted.0, &sorted.1, colors, &b, size)
                        });
                        let texture = match other {
                            Some(mut c) => {
                                c.texture.set(img, TextureOptions::NEAREST);
                                c.texture
                            }
                            None => ctx.load_texture(
                                format!("{id}-raster"),
                                img,
                                TextureOptions::NEAREST,
                            ),
                        };
                        ctx.data_mut(|d| {
                            d.insert_temp(
                                cache_id,
                                RasterCache {
                                    key,
                                    texture: texture.clone(),
                                },
                            )
                        });
                        texture
                    }
                };
                let centre = PlotPoint::new(
                    (b.min()[0] + b.max()[0]) / 2.0,
                    (b.min()[1] + b.max()[1]) / 2.0,
                );
                let extent = egui::vec2(b.width() as f32, b.height() as f32);
                plot.image(PlotImage::new("density", texture.id(), centre, extent));
                // Empty series keep the legend.
                for (name, color) in input.names.iter().zip(input.colors) {
                    plot.points(Points::new(name.clone(), Vec::<[f64; 2]>::new()).color(*color));
                }
                out.rasterized = true;
            } else {
                let mut groups: Vec<Vec<[f64; 2]>> = vec![Vec::new(); input.names.len()];
                let mut dim: Vec<[f64; 2]> = Vec::new();
                for (p, &g) in input.points.iter().zip(input.group) {
                    let xy = [p[0] as f64, p[1] as f64];
                    match groups.get_mut(g as usize) {
                        Some(v) => v.push(xy),
                        None => dim.push(xy),
                    }
                }
                if !dim.is_empty() {
                    plot.points(
                        Points::new("other samples", dim)
                            .color(Color32::from_gray(70))
                            .radius(radius),
                    );
                }
                for ((pts, name), color) in groups.into_iter().zip(input.names).zip(input.colors) {
                    plot.points(
                        Points::new(name.clone(), pts)
                            .color(*color)
                            .radius(radius)
                            .filled(true),
                    );
                }
            }
            if !input.selection.is_empty() {
                let sel: Vec<[f64; 2]> = input
                    .selection
                    .iter()
                    .map(|&i| xy(input.points[i]))
                    .collect();
                plot.points(
                    Points::new("selection", sel)
                        .color(Color32::WHITE)
                        .filled(false)
                        .radius(radius + 2.0),
                );
            }
            if let Some(c) = input.highlight {
                // White in a black rim: unlike any class, bin or decision
                // colour (a red marker read as "Dress", "flagged" and
                // "excluded" at once).
                // Only the white diamond is named, so the legend's entry is
                // white too (two items of one name share a mixed colour).
                for (name, color, r) in [
                    ("", Color32::BLACK, 9.0),
                    ("current sample", Color32::WHITE, 6.0),
                ] {
                    plot.points(
                        Points::new(name, vec![xy(input.points[c])])
                            .color(color)
                            .shape(MarkerShape::Diamond)
                            .radius(r),
                    );
                }
            }
            let path: Vec<[f64; 2]> = plot
                .ctx()
                .data(|d| d.get_temp(lasso_id))
                .unwrap_or_default();
            if path.len() >= 2 {
                plot.add(selecting(path));
            }
            let start: Option<PlotPoint> = plot.ctx().data(|d| d.get_temp(drag_id));
            if let (Some(a), Some(b)) = (start, plot.pointer_coordinate()) {
                plot.add(selecting(vec![
                    [a.x, a.y],
                    [b.x, a.y],
                    [b.x, b.y],
                    [a.x, b.y],
                ]));
            }
            plot.pointer_coordinate()
        });
    let pointer = resp.inner;
    let response = &resp.response;
    if shift
        && response.drag_started()
        && let Some(p) = pointer
    {
        ui.ctx().data_mut(|d| d.insert_temp(drag_id, p));
    }
    // Lasso with Ctrl+drag: the path follows the pointer; release selects inside.
    if lasso
        && response.dragged()
        && let Some(p) = pointer
    {
        ui.ctx().data_mut(|d| {
            d.get_temp_mut_or_default::<Vec<[f64; 2]>>(lasso_id)
                .push([p.x, p.y])
        });
    }
    if response.drag_stopped() {
        let path: Vec<[f64; 2]> = ui.ctx().data_mut(|d| {
            let p = d.get_temp(lasso_id).unwrap_or_default();
            d.remove::<Vec<[f64; 2]>>(lasso_id);
            p
        });
        if path.len() >= 3 {
            out.box_selected = Some(
                (0..n)
                    .filter(|&i| inside(&path, xy(input.points[i])))
                    .collect(),
            );
        }
    }
    if response.drag_stopped() {
        let start: Option<PlotPoint> = ui.ctx().data_mut(|d| {
            let s = d.get_temp(drag_id);
            d.remove::<PlotPoint>(drag_id);
            s
        });
        if let (Some(a), Some(b)) = (start, pointer) {
            let (x0, x1) = (a.x.min(b.x), a.x.max(b.x));
            let (y0, y1) = (a.y.min(b.y), a.y.max(b.y));
            out.box_selected = Some(
                (0..n)
                    .filter(|&i| {
                        let [x, y] = xy(input.points[i]);
                        x >= x0 && x <= x1 && y >= y0 && y <= y1
                    })
                    .collect(),
            );
        }
    }
    if let Some(hover) = response.hover_pos()
        && !response.dragged()
    {
        let p = resp.transform.value_from_position(hover);
        let tx = resp.transform.dpos_dvalue_x() as f32;
        let ty = resp.transform.dpos_dvalue_y() as f32;
        let mut best = (f32::INFINITY, usize::MAX);
        for (i, q) in input.points.iter().enumerate() {
            let dx = (q[0] - p.x as f32) * tx;
            let dy = (q[1] - p.y as f32) * ty;
            let d = dx * dx + dy * dy;
            if d < best.0 {
                best = (d, i);
            }
        }
        if best.0 <= PICK_RADIUS * PICK_RADIUS {
            response
                .clone()
                .on_hover_ui_at_pointer(|ui| hover_ui(ui, best.1));
            if response.clicked() {
                let now = ui.input(|i| i.time);
                ui.ctx()
                    .data_mut(|d| d.insert_temp(pending_id, (best.1, now)));
            }
        }
    }
    out.clicked = settle_click(ui, pending_id, response.double_clicked());
    out
}

/// The point a single click chose, once egui's double-click time has
/// passed with no second click; None while waiting, and never for the two
/// clicks of a double-click (which resets the view: it must not also show
/// a sample and add it to the queue).
fn settle_click(ui: &egui::Ui, pending_id: egui::Id, double: bool) -> Option<usize> {
    let pending: Option<(usize, f64)> = ui.ctx().data(|d| d.get_temp(pending_id));
    let (point, at) = pending?;
    let wait = ui.ctx().options(|o| o.input_options.max_double_click_delay);
    let now = ui.input(|i| i.time);
    if double {
        ui.ctx().data_mut(|d| d.remove::<(usize, f64)>(pending_id));
        return None;
    }
    if now - at <= wait {
        let left = std::time::Duration::from_secs_f64(wait - (now - at) + 0.01);
        ui.ctx().request_repaint_after(left);
        return None;
    }
    ui.ctx().data_mut(|d| d.remove::<(usize, f64)>(pending_id));
    Some(point)
}

/// Even-odd rule: whether `p` lies inside the closed polygon `path`.
pub fn inside(path: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut c = false;
    let mut j = path.len() - 1;
    for i in 0..path.len() {
        let (a, b) = (path[i], path[j]);
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0]
        {
            c = !c;
        }
        j = i;
    }
    c
}

fn xy(p: [f32; 2]) -> [f64; 2] {
    [p[0] as f64, p[1] as f64]
}

/// Whether more than `limit` points are inside the bounds (stops counting there).
fn more_visible_than(points: &[[f32; 2]], b: &PlotBounds, limit: usize) -> bool {
    let (x0, y0) = (b.min()[0] as f32, b.min()[1] as f32);
    let (x1, y1) = (b.max()[0] as f32, b.max()[1] as f32);
    points
        .iter()
        .filter(|p| p[0] >= x0 && p[0] <= x1 && p[1] >= y0 && p[1] <= y1)
        .nth(limit)
        .is_some()
}

/// Points and groups reordered so that neighbours on screen are neighbours in
/// memory (row-major over a 256×256 grid of the data's extent): the raster
/// pass then walks its buffer almost in order instead of jumping at random.
/// Cached per data generation, with the data's extent (x0, y0, x1, y1).
type Sorted = std::sync::Arc<(Vec<[f32; 2]>, Vec<u16>, [f32; 4])>;

fn spatially_sorted(ctx: &egui::Context, cache_id: egui::Id, input: &ScatterInput) -> Sorted {
    let id = cache_id.with("sorted");
    let key = (input.generation, input.points.len());
    if let Some((k, s)) = ctx.data(|d| d.get_temp::<((u64, usize), Sorted)>(id))
        && k == key
    {
        return s;
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in input.points {
        x0 = x0.min(p[0]);
        y0 = y0.min(p[1]);
        x1 = x1.max(p[0]);
        y1 = y1.max(p[1]);
    }
    let (sx, sy) = (255.0 / (x1 - x0).max(1e-30), 255.0 / (y1 - y0).max(1e-30));
    let cell = |p: &[f32; 2]| (((p[1] - y0) * sy) as u32) << 8 | ((p[0] - x0) * sx) as u32;
    let mut order: Vec<u32> = (0..input.points.len() as u32).collect();
    super::pool::on_window_threads(|| {
        order.par_sort_unstable_by_key(|&i| cell(&input.points[i as usize]));
    });
    let pts = order.iter().map(|&i| input.points[i as usize]).collect();
    let grp = order.iter().map(|&i| input.group[i as usize]).collect();
    let sorted: Sorted = std::sync::Arc::new((pts, grp, [x0, y0, x1, y1]));
    ctx.data_mut(|d| d.insert_temp(id, (key, sorted.clone())));
    sorted
}

/// Where the raster goes: the whole cells of the view `b` (drawn `screen`
/// pixels large, [`CELL_PX`] per cell) that the data's `extent` touches,
/// as plot bounds and a size in cells; None when no data is in view. The
/// image never reaches past the data, so the plot's automatic bounds
/// (which include every item) fit the data, not the previous image — a
/// raster as large as the view made them grow by their margin each frame.
fn raster_area(
    b: &PlotBounds,
    extent: [f32; 4],
    screen: egui::Vec2,
) -> Option<(PlotBounds, [u32; 2])> {
    let cells = [
        (screen.x / CELL_PX).ceil().max(1.0) as f64,
        (screen.y / CELL_PX).ceil().max(1.0) as f64,
    ];
    let mut min = [0.0; 2];
    let mut max = [0.0; 2];
    let mut size = [0u32; 2];
    for a in 0..2 {
        let per_cell = (b.max()[a] - b.min()[a]) / cells[a];
        // A NaN cell size (an empty or broken bound) stops too.
        if per_cell.is_nan() || per_cell <= 0.0 {
            return None;
        }
        let first = ((extent[a] as f64 - b.min()[a]) / per_cell)
            .floor()
            .max(0.0);
        let last = (((extent[a + 2] as f64 - b.min()[a]) / per_cell).floor() + 1.0).min(cells[a]);
        if last <= first {
            return None;
        }
        min[a] = b.min()[a] + first * per_cell;
        max[a] = b.min()[a] + last * per_cell;
        size[a] = (last - first) as u32;
    }
    Some((PlotBounds::from_min_max(min, max), size))
}

/// Colour of each screen cell: mean colour of its points, opacity by log density.
pub fn density_raster(
    points: &[[f32; 2]],
    group: &[u16],
    colors: &[Color32],
    b: &PlotBounds,
    size: [u32; 2],
) -> ColorImage {
    let (w, h) = (size[0] as usize, size[1] as usize);
    let (x0, y0) = (b.min()[0] as f32, b.min()[1] as f32);
    let sx = w as f32 / b.width().max(1e-30) as f32;
    let sy = h as f32 / b.height().max(1e-30) as f32;
    let dimmed = [70f32, 70.0, 70.0];
    let rgb: Vec<[f32; 3]> = colors
        .iter()
        .map(|c| [c.r() as f32, c.g() as f32, c.b() as f32])
        .collect();
    // Each thread fills its own buffer over a slice of the points; buffers are summed.
    let chunk = points
        .len()
        .div_ceil(rayon::current_num_threads().max(1))
        .max(1);
    let acc = points
        .par_chunks(chunk)
        .zip(group.par_chunks(chunk))
        .map(|(pts, grp)| {
            let mut acc = vec![[0f32; 4]; w * h];
            for (p, &g) in pts.iter().zip(grp) {
                // Truncating casts, not floor(): floor is a libm call on
                // baseline x86-64, and negatives are rejected first anyway.
                let fx = (p[0] - x0) * sx;
                let fy = (p[1] - y0) * sy;
                if !(fx >= 0.0 && fy >= 0.0 && fx < w as f32 && fy < h as f32) {
                    continue;
                }
                let (cx, cy) = (fx as usize, fy as usize);
                let c = rgb.get(g as usize).unwrap_or(&dimmed);
                let a = &mut acc[(h - 1 - cy) * w + cx];
                a[0] += c[0];
                a[1] += c[1];
                a[2] += c[2];
                a[3] += 1.0;
            }
            acc
        })
        .reduce_with(|mut a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                x[0] += y[0];
                x[1] += y[1];
                x[2] += y[2];
                x[3] += y[3];
            }
            a
        })
        .unwrap_or_else(|| vec![[0f32; 4]; w * h]);
    let max = acc.iter().map(|a| a[3]).fold(1.0f32, f32::max);
    let norm = (1.0 + max).ln();
    let pixels = acc
        .iter()
        .map(|a| {
            if a[3] == 0.0 {
                Color32::TRANSPARENT
            } else {
                let alpha = 0.45 + 0.55 * (1.0 + a[3]).ln() / norm;
                Color32::from_rgba_unmultiplied(
                    (a[0] / a[3]) as u8,
                    (a[1] / a[3]) as u8,
                    (a[2] / a[3]) as u8,
                    (alpha * 255.0) as u8,
                )
            }
        })
        .collect();
    ColorImage::new([w, h], pixels)
}
