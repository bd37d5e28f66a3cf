//! Frame time of the real embedding view (`ui::scatter_view`) while panning
//! a million points, driven headlessly by egui_kittest. Each frame's CPU time
//! covers egui's pass and tessellation, as in the window.
//! Run: `cargo run --release --example bench_scatter [POINTS]`.

use std::time::Instant;

use egui::{Color32, Event, Modifiers, PointerButton, Pos2};
use egui_kittest::Harness;
use poisonlens::ui::scatter_view::{self, ScatterInput};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = poisonlens::linalg::XorShift::new(0x9E37_79B9_7F4A_7C15);
    let mut rnd = move || rng.uniform();
    let groups = 10usize;
    let centres: Vec<[f32; 2]> = (0..groups).map(|_| [rnd() * 40.0, rnd() * 40.0]).collect();
    let mut points = Vec::with_capacity(n);
    let mut group = Vec::with_capacity(n);
    for i in 0..n {
        let g = i % groups;
        let (a, b) = (rnd() + rnd() + rnd() - 1.5, rnd() + rnd() + rnd() - 1.5);
        points.push([centres[g][0] + a * 4.0, centres[g][1] + b * 4.0]);
        group.push(g as u16);
    }
    let names: Vec<String> = (0..groups).map(|g| format!("class {g}")).collect();
    let colors: Vec<Color32> = (0..groups)
        .map(|g| Color32::from_rgb((g * 25) as u8, 120, 200 - (g * 15) as u8))
        .collect();
    {
        let b = egui_plot::PlotBounds::from_min_max([-10.0, -10.0], [50.0, 50.0]);
        let t = Instant::now();
        for _ in 0..20 {
            let _ = scatter_view::density_raster(&points, &group, &colors, &b, [330, 233]);
        }
        println!(
            "density raster alone: {:.1} ms (wall)",
            t.elapsed().as_secs_f64() * 1000.0 / 20.0
        );
    }
    let rasterized = std::cell::Cell::new(false);
    let mut harness = Harness::builder()
        .with_size([1000.0, 700.0])
        .build_ui(|ui| {
            let input = ScatterInput {
                points: &points,
                group: &group,
                names: &names,
                colors: &colors,
                highlight: Some(0),
                selection: &[],
                generation: 0,
            };
            rasterized.set(scatter_view::show(ui, "bench", &input, |_, _| {}).rasterized);
        });
    harness.step();
    harness.step();
    let ctx = harness.ctx.clone();
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    let start = Pos2::new(500.0, 350.0);
    harness.event(Event::PointerMoved(start));
    harness.event(Event::PointerButton {
        pos: start,
        button: PointerButton::Primary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    harness.step();
    for f in 0..120 {
        let p = Pos2::new(
            500.0 + (f as f32 * 0.7).sin() * 150.0,
            350.0 + (f as f32 * 0.3).cos() * 100.0,
        );
        harness.event(Event::PointerMoved(p));
        let t = Instant::now();
        let c = process_cpu_ms();
        harness.step();
        let out = harness.output().clone();
        let _meshes = ctx.tessellate(out.shapes, out.pixels_per_point);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        cpu.push(process_cpu_ms() - c);
    }
    drop(harness);
    let rasterized = rasterized.get();
    for (what, mut v) in [("wall", times), ("CPU (all threads)", cpu)] {
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "{n} points, panning, {what}: mean {mean:.1} ms/frame, median {:.1}, p95 {:.1}, max {:.1} (raster: {rasterized})",
            v[v.len() / 2],
            v[v.len() * 95 / 100],
            v[v.len() - 1]
        );
    }
}

/// CPU time used by the whole process so far (all threads), in ms.
fn process_cpu_ms() -> f64 {
    // /proc/self/stat fields 14 and 15: user and system time in clock ticks.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks * 1000.0 / 100.0
}
