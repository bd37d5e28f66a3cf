//! The `poisonlens` command: the workbench (no subcommand) and headless
//! commands for pipelines.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

mod cli;
use poisonlens::dataset::{Dataset, OpenOptions};
use poisonlens::detect::cache::{self, ScanCache};
use poisonlens::detect::{self, ScanOptions};
use poisonlens::review::location::locate;

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
    /// Keep review state in this folder instead of beside the dataset (a
    /// new store there starts as a copy of the one beside the dataset).
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Who is reviewing (default: $POISONLENS_REVIEWER, else your login name).
    #[arg(long, global = true, value_name = "NAME")]
    reviewer: Option<String>,
    /// The workbench scans with this model's activations.
    #[command(flatten)]
    model: cli::model::ModelArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Scan a dataset and write a report of suspicious samples.
    Scan {
        /// A manifest (.csv/.parquet), a folder holding one, or an ImageFolder root.
        dataset: PathBuf,
        /// Embeddings (.npy, N×D float32/float64) overriding any in the dataset.
        #[arg(long, conflicts_with = "model")]
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
        /// False-flag budget of the calibrated tests, between 0 and 0.5
        /// (default 0.05): the expected share of wrong near-copy and
        /// fixed-pattern flags, and the chance of any false trigger.
        #[arg(long, default_value_t = detect::DEFAULT_FDR, value_parser = parse_fdr)]
        fdr: f64,
        /// No progress on stderr.
        #[arg(long, short)]
        quiet: bool,
        /// Scan even if a stored result of the same data, options and build
        /// exists beside the review state, and store nothing.
        #[arg(long)]
        no_cache: bool,
        #[command(flatten)]
        model: cli::model::ModelArgs,
    },
    /// Compute embeddings with the dataset's own model (ONNX) and write them
    /// as .npy (N × D float32) for scan --embeddings, NumPy or anything else.
    Embed {
        /// The dataset (as for scan).
        dataset: PathBuf,
        #[command(flatten)]
        model: cli::model::ModelArgs,
        /// The .npy file to write.
        #[arg(long)]
        out: PathBuf,
        /// No progress on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Record decisions from a script, or list decisions and history.
    ///
    /// Writes to the same durable store as the workbench. All decisions of one
    /// call are one step (one undo). With --stdin, reads one command per line
    /// (`keep ID`, `exclude ID`, `relabel ID=LABEL`, `undo`, `redo`) and answers
    /// `ok STEP` once each is on disk.
    Review {
        /// The dataset (as for scan).
        dataset: PathBuf,
        /// Exclude these samples (ids).
        #[arg(long, num_args = 1.., value_name = "ID")]
        exclude: Vec<String>,
        /// Keep these samples as labelled.
        #[arg(long, num_args = 1.., value_name = "ID")]
        keep: Vec<String>,
        /// Give these samples a new label.
        #[arg(long, num_args = 1.., value_name = "ID=LABEL")]
        relabel: Vec<String>,
        /// Why (stored with every decision of this call).
        #[arg(long, default_value = "")]
        reason: String,
        /// Undo the newest step.
        #[arg(long)]
        undo: bool,
        /// Redo the newest undone step.
        #[arg(long)]
        redo: bool,
        /// Print the decisions and the whole history.
        #[arg(long)]
        list: bool,
        /// Read commands from standard input, one per line.
        #[arg(long)]
        stdin: bool,
    },
    /// Write the cleaned manifest (CSV, Parquet, record.json), optionally signed.
    Export {
        /// The dataset (as for scan).
        dataset: PathBuf,
        /// Folder to write into (created if needed).
        #[arg(long)]
        out: PathBuf,
        /// Sign record.json with this OpenSSH Ed25519 private key.
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
        /// Signer identity written into the record and checked against
        /// allowed_signers (default: the key's comment, else the reviewer).
        #[arg(long)]
        identity: Option<String>,
        /// Read the key's passphrase from the first line of this file
        /// (else $POISONLENS_PASSPHRASE, else asked on the terminal).
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// The model the scan used (named with its SHA-256 in the record).
        #[command(flatten)]
        model: cli::model::ModelArgs,
    },
    /// Check a signed export: signature, signer, tables and every kept file.
    Verify {
        /// The export folder (holding record.json and record.json.sig).
        dir: PathBuf,
        /// ssh-keygen allowed_signers file the signer must be listed in.
        #[arg(long, value_name = "FILE")]
        allowed_signers: Option<PathBuf>,
        /// Identity to check (default: the signer the record names).
        #[arg(long)]
        identity: Option<String>,
        /// Where the dataset's files are now, if moved since export.
        #[arg(long, value_name = "DIR")]
        data_root: Option<PathBuf>,
        /// Without --allowed-signers, accept a valid signature by any key:
        /// checks the export is intact, leaves the signer unverified.
        #[arg(long, conflicts_with = "allowed_signers")]
        accept_any_signer: bool,
    },
    /// Make an Ed25519 signing key pair for a reviewer.
    Keygen {
        /// Private key file (default ~/.ssh/poisonlens_ed25519); the public
        /// key goes to FILE.pub.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Identity (principal) for the key comment and allowed_signers line
        /// (default: the reviewer name).
        #[arg(long)]
        identity: Option<String>,
        /// Read the new key's passphrase from this file.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// Store the key without a passphrase.
        #[arg(long)]
        no_passphrase: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let reviewer = cli
        .reviewer
        .clone()
        .unwrap_or_else(poisonlens::review::default_reviewer);
    let state_dir = cli.state_dir.clone();
    let result = match cli.command {
        Some(Command::Scan {
            dataset,
            embeddings,
            out,
            seed,
            no_images,
            fdr,
            quiet,
            no_cache,
            model,
        }) => run_scan(ScanArgs {
            dataset,
            embeddings,
            out,
            opts: ScanOptions {
                seed,
                use_images: !no_images,
                fdr,
                model: None,
            },
            model,
            quiet,
            cache: (!no_cache).then_some(state_dir),
        }),
        Some(Command::Embed {
            dataset,
            model,
            out,
            quiet,
        }) => cli::model::embed(&dataset, &model, &out, quiet),
        Some(Command::Review {
            dataset,
            exclude,
            keep,
            relabel,
            reason,
            undo,
            redo,
            list,
            stdin,
        }) => cli::review::run(cli::review::ReviewArgs {
            dataset,
            exclude,
            keep,
            relabel,
            reason,
            reviewer,
            undo,
            redo,
            list,
            stdin,
            state_dir,
        }),
        Some(Command::Export {
            dataset,
            out,
            sign,
            identity,
            passphrase_file,
            model,
        }) => cli::export::run(cli::export::ExportArgs {
            dataset,
            out,
            sign,
            identity,
            reviewer,
            passphrase_file,
            state_dir,
            model,
        }),
        Some(Command::Verify {
            dir,
            allowed_signers,
            identity,
            data_root,
            accept_any_signer,
        }) => {
            return cli::export::verify(
                dir,
                poisonlens::manifest::verify::VerifyOptions {
                    allowed_signers,
                    identity,
                    data_root,
                    accept_any_signer,
                },
            );
        }
        Some(Command::Keygen {
            out,
            identity,
            passphrase_file,
            no_passphrase,
        }) => cli::keys::keygen(
            out,
            identity.unwrap_or(reviewer),
            passphrase_file,
            no_passphrase,
        ),
        None => run_workbench(cli.dataset, state_dir, reviewer, cli.model.options()),
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
fn run_workbench(
    dataset: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    reviewer: String,
    model: Option<poisonlens::dataset::model::ModelOptions>,
) -> Result<(), poisonlens::Error> {
    poisonlens::ui::run(
        dataset.unwrap_or_else(default_dataset),
        poisonlens::ui::Settings {
            state_dir,
            reviewer,
            fdr: detect::DEFAULT_FDR,
            signing_key: None,
            views: Default::default(),
            model,
        },
    )
    .map_err(poisonlens::Error::Other)
}

#[cfg(not(feature = "gui"))]
fn run_workbench(
    dataset: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    reviewer: String,
    model: Option<poisonlens::dataset::model::ModelOptions>,
) -> Result<(), poisonlens::Error> {
    let _ = (dataset, default_dataset(), state_dir, reviewer, model);
    Err(poisonlens::Error::Other(
        "this build has no workbench (built with --no-default-features); use a subcommand, e.g. `poisonlens scan`".into(),
    ))
}

/// What `scan` was asked to do.
struct ScanArgs {
    dataset: PathBuf,
    embeddings: Option<PathBuf>,
    out: PathBuf,
    opts: ScanOptions,
    /// `--model` and its preparation, loaded once the dataset is open.
    model: cli::model::ModelArgs,
    quiet: bool,
    /// Use the stored result beside the review state (in `--state-dir` if
    /// given); None with `--no-cache`.
    cache: Option<Option<PathBuf>>,
}

fn run_scan(a: ScanArgs) -> Result<(), poisonlens::Error> {
    let ScanArgs {
        dataset,
        embeddings,
        out,
        mut opts,
        model,
        quiet,
        cache,
    } = a;
    let t0 = Instant::now();
    let ds = Dataset::open(&dataset, &OpenOptions { embeddings })?;
    ds.refuse_as_output(&out)?;
    opts.model = model.load(&ds)?.map(std::sync::Arc::new);
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
    let store = match &cache {
        None => Err("--no-cache".to_string()),
        Some(state_dir) => locate(&ds, state_dir.as_deref())
            .map_err(|e| e.to_string())
            .and_then(|l| ScanCache::beside(&l.path)),
    };
    let (report, origin) = cache::scan_cached(
        &ds,
        &opts,
        store.as_ref().map_err(Clone::clone),
        &detect::ScanWatch {
            progress: &progress,
            cancelled: &|| false,
            finished: &|_| {},
        },
    )?;
    if !quiet {
        if tty {
            eprint!("\r\x1b[2K");
        }
        let done = match origin {
            cache::Origin::Stored(_) => "read the stored scan of",
            cache::Origin::Scanned { .. } => "scanned",
        };
        eprintln!(
            "{done} {} samples in {:.1}s using {}",
            ds.len(),
            t0.elapsed().as_secs_f32(),
            report.feature_source
        );
        eprintln!("{}", origin.describe());
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
    println!("{}", report.budget_note());
    Ok(())
}

/// `--fdr`: a share strictly between 0 and 0.5.
fn parse_fdr(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if detect::fdr_is_valid(v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0 < fdr <= 0.5"))
    }
}
