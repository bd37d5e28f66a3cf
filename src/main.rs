//! The `poisonlens` command: the workbench (no subcommand) and headless
//! commands for pipelines.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use poisonlens::dataset::{Dataset, OpenOptions};
use poisonlens::detect::{self, ScanOptions};

#[derive(Parser)]
#[command(
    name = "poisonlens",
    version,
    about = "Find and remove poisoned training data",
    long_about = "Find and remove poisoned training data.\n\nWith no subcommand, opens the desktop workbench on DATASET (default: the bundled sample_data/).",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Dataset to open in the workbench (manifest, folder or ImageFolder).
    dataset: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Scan a dataset and write a report of suspicious samples.
    Scan {
        /// A manifest (.csv/.parquet), a folder holding one, or an ImageFolder root.
        dataset: PathBuf,
        /// Embeddings (.npy, N×D float32/float64) overriding any in the dataset.
        #[arg(long)]
        embeddings: Option<PathBuf>,
        /// Report file: .csv, .parquet or .json.
        #[arg(long)]
        out: PathBuf,
        /// Seed for the randomised steps (same seed, same report).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Do not decode images (skips image duplicate checks).
        #[arg(long)]
        no_images: bool,
        /// No progress on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Scan {
            dataset,
            embeddings,
            out,
            seed,
            no_images,
            quiet,
        }) => run_scan(dataset, embeddings, out, seed, !no_images, quiet),
        None => run_workbench(cli.dataset),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The bundled sample: `sample_data/` in the working directory, else the one
/// beside the sources this binary was built from.
fn default_dataset() -> PathBuf {
    let here = PathBuf::from("sample_data");
    if here.is_dir() {
        here
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample_data")
    }
}

#[cfg(feature = "gui")]
fn run_workbench(dataset: Option<PathBuf>) -> Result<(), poisonlens::Error> {
    poisonlens::ui::run(dataset.unwrap_or_else(default_dataset)).map_err(poisonlens::Error::Other)
}

#[cfg(not(feature = "gui"))]
fn run_workbench(dataset: Option<PathBuf>) -> Result<(), poisonlens::Error> {
    let _ = (dataset, default_dataset());
    Err(poisonlens::Error::Other(
        "this build has no workbench (built with --no-default-features); use a subcommand, e.g. `poisonlens scan`".into(),
    ))
}

fn run_scan(
    dataset: PathBuf,
    embeddings: Option<PathBuf>,
    out: PathBuf,
    seed: u64,
    use_images: bool,
    quiet: bool,
) -> Result<(), poisonlens::Error> {
    let t0 = Instant::now();
    let ds = Dataset::open(&dataset, &OpenOptions { embeddings })?;
    let last = std::sync::Mutex::new(String::new());
    let tty = std::io::stderr().is_terminal();
    let progress = |stage: &str, frac: f32| {
        if quiet {
            return;
        }
        let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
        if tty {
            // One line, redrawn in place.
            let line = format!("{stage} {:>3.0}%", frac * 100.0);
            if *l != line {
                eprint!("\r\x1b[2K{line}");
                *l = line;
            }
        } else if *l != stage && stage != "done" {
            // Logs get one line per stage, no control characters.
            eprintln!("{stage}…");
            *l = stage.to_string();
        }
    };
    let report = detect::scan(&ds, &ScanOptions { seed, use_images }, &progress)?;
    if !quiet {
        if tty {
            eprint!("\r\x1b[2K");
        }
        eprintln!(
            "scanned {} samples in {:.1}s using {}",
            ds.len(),
            t0.elapsed().as_secs_f32(),
            report.feature_source
        );
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
    }
    poisonlens::report::write(&report, &out)?;
    print!("{}", poisonlens::report::summary_table(&report));
    println!(
        "{} of {} samples flagged; report written to {}",
        report.flagged_count(),
        ds.len(),
        out.display()
    );
    Ok(())
}
