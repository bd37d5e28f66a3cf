//! Hostile files where data should be: FIFOs and devices are refused at
//! once (never waited on or read), sizes come from the format's own header
//! and are checked before reading, and values that would break the maths
//! (no dimensions, magnitudes whose squares overflow, images whose header
//! claims gigapixels) are refused with the file, row and column named.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use poisonlens::dataset::{Dataset, OpenOptions, images, npy};
use poisonlens::linalg::Matrix;

/// Runs `f` on another thread and fails the test if it takes over a minute
/// (a read that blocks on a FIFO would otherwise hang the whole suite).
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("still running after 60 s: blocked on a hostile file")
}

fn open_err(manifest: PathBuf, embeddings: Option<PathBuf>) -> String {
    within_a_minute(move || {
        Dataset::open(&manifest, &OpenOptions { embeddings })
            .map(|_| ())
            .expect_err("should be refused")
            .to_string()
    })
}

fn fifo(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let st = std::process::Command::new("mkfifo")
        .arg(&p)
        .status()
        .expect("mkfifo");
    assert!(st.success());
    p
}

fn manifest(dir: &Path, n: usize) -> PathBuf {
    let mut s = String::from("id,label\n");
    for i in 0..n {
        s += &format!("s{i},{}\n", ["cat", "dog"][i % 2]);
    }
    let p = dir.join("manifest.csv");
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn fifos_and_devices_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), 4);
    let e = open_err(m.clone(), Some(fifo(dir.path(), "emb.npy")));
    assert!(e.contains("emb.npy") && e.contains("FIFO"), "{e}");
    let e = open_err(m, Some(PathBuf::from("/dev/zero")));
    assert!(
        e.contains("/dev/zero") && e.contains("character device"),
        "{e}"
    );
    let fake = fifo(dir.path(), "fake.csv");
    let e = open_err(fake, None);
    assert!(e.contains("fake.csv") && e.contains("FIFO"), "{e}");
    let img = fifo(dir.path(), "a.png");
    let e = within_a_minute(move || images::decode_file(&img).unwrap_err().to_string());
    assert!(e.contains("a.png") && e.contains("FIFO"), "{e}");
}

#[test]
fn npy_sizes_come_from_the_header_and_are_checked_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), 4);
    // A 4 GB (sparse) file with a bad magic: refused from its first bytes.
    let big = dir.path().join("big.npy");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let e = open_err(m.clone(), Some(big));
    assert!(e.contains("magic"), "{e}");
    // A header claiming far more data than the file holds.
    let lying = dir.path().join("lying.npy");
    npy::write_npy(&lying, &Matrix::new(4, 2, vec![0.0; 8])).unwrap();
    let mut bytes = std::fs::read(&lying).unwrap();
    let at = bytes.windows(6).position(|w| w == b"(4, 2)").unwrap();
    bytes[at..at + 6].copy_from_slice(b"(4, 9)");
    std::fs::write(&lying, bytes).unwrap();
    let e = open_err(m.clone(), Some(lying));
    assert!(e.contains("lying.npy") && e.contains("needs 144"), "{e}");
    // A header longer than any NumPy writes.
    let long = dir.path().join("long.npy");
    let mut b = b"\x93NUMPY\x02\x00".to_vec();
    b.extend_from_slice(&(1u32 << 31).to_le_bytes());
    std::fs::write(&long, b).unwrap();
    let e = open_err(m, Some(long));
    assert!(e.contains("long.npy") && e.contains("header"), "{e}");
}

#[test]
fn embeddings_without_dimensions_or_with_overflowing_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), 4);
    let empty = dir.path().join("empty.npy");
    npy::write_npy(&empty, &Matrix::new(4, 0, vec![])).unwrap();
    let e = open_err(m.clone(), Some(empty));
    assert!(
        e.contains("empty.npy") && e.contains("zero dimensions"),
        "{e}"
    );
    let huge = dir.path().join("huge.npy");
    let mut v = vec![0.5f32; 8];
    v[5] = 3e38;
    npy::write_npy(&huge, &Matrix::new(4, 2, v)).unwrap();
    let e = open_err(m, Some(huge));
    assert!(
        e.contains("huge.npy") && e.contains("row 3") && e.contains("too large"),
        "{e}"
    );
    // The same through manifest columns names the column.
    let cols = dir.path().join("cols.csv");
    std::fs::write(&cols, "id,label,emb_0\na,x,1\nb,x,3e38\nc,y,0\nd,y,1\n").unwrap();
    let e = open_err(cols, None);
    assert!(e.contains("row 2") && e.contains("emb_0"), "{e}");
}

#[test]
fn an_image_claiming_too_many_pixels_is_refused_from_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("wide.png");
    image::GrayImage::new(8193, 8193).save(&p).unwrap();
    let e = images::decode_file(&p).unwrap_err().to_string();
    assert!(e.contains("wide.png") && e.contains("8193×8193"), "{e}");
    let ok = dir.path().join("ok.png");
    image::GrayImage::new(28, 28).save(&ok).unwrap();
    assert_eq!(images::decode_file(&ok).unwrap().width(), 28);
}

#[test]
fn parquet_files_that_break_their_reader_are_errors() {
    // Found by `cargo fuzz run manifest`, each a few hundred bytes: polars'
    // Parquet metadata reader panics on the first, asks for 167 GB on the
    // second (an allocation failure aborts the process) and loops for
    // seconds on the third. The footer is now checked before polars reads
    // it, and a panic inside polars becomes an error.
    let dir = tempfile::tempdir().unwrap();
    for (name, says) in [
        ("polars-thrift-panic.parquet", "malformed"),
        (
            "polars-167gb-row-groups.parquet",
            "not a valid Parquet file",
        ),
        ("polars-slow-list.parquet", "elements where"),
    ] {
        let p = dir.path().join("manifest.parquet");
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/manifest")
            .join(name);
        std::fs::copy(src, &p).unwrap();
        let e = open_err(p, None);
        assert!(
            e.contains("manifest.parquet") && e.contains(says),
            "{name}: {e}"
        );
    }
}

/// The scan's own read path (each file opened through the dataset's folder
/// resolver, its path and open handle checked): a FIFO, a symlink to a
/// device, an image whose header claims gigapixels and a missing file among
/// the images are each refused at once with the file named, by the image
/// pass, the cache key's hashing and a single read alike; the good image
/// still reads.
/// A dataset's files open alike by the one-call route (Linux: `openat2`
/// beneath the dataset folder) and by the checked path: the same bytes
/// from every file inside, a refusal for every file that is not a regular
/// file inside the folder — through a symlink out as a file or a folder,
/// a FIFO, a folder, a missing file — and an absolute symlink back inside
/// (which `openat2` will not follow) still read, by the checked path.
#[cfg(unix)]
#[test]
fn a_datasets_files_open_alike_by_either_route() {
    let base = tempfile::tempdir().unwrap();
    let (d, outside) = (base.path().join("data"), base.path().join("outside"));
    std::fs::create_dir_all(d.join("a/b")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(d.join("a/b/x.png"), b"x").unwrap();
    std::fs::write(d.join("top.png"), b"t").unwrap();
    std::fs::write(outside.join("secret.png"), b"s").unwrap();
    let link = |to: &Path, at: &str| std::os::unix::fs::symlink(to, d.join(at)).unwrap();
    link(&outside.join("secret.png"), "a/out.png");
    link(&outside, "linked");
    link(Path::new("b/x.png"), "a/in.png");
    link(&d.join("top.png"), "absolute_in.png");
    fifo(&d.join("a"), "pipe.png");
    let rels = [
        "a/b/x.png",
        "./a/../a/b/x.png",
        "a/in.png",
        "top.png",
        "absolute_in.png",
        "a/out.png",
        "linked/secret.png",
        "a/pipe.png",
        "a/b",
        "a/missing.png",
    ];
    let mut m = String::from("id,label,path\n");
    for (i, rel) in rels.iter().enumerate() {
        m += &format!("s{i},{},{rel}\n", ["cat", "dog"][i % 2]);
    }
    std::fs::write(d.join("manifest.csv"), m).unwrap();
    let ds = Dataset::open(&d.join("manifest.csv"), &OpenOptions::default()).unwrap();
    let files = ds.files();
    for (i, rel) in rels.iter().enumerate() {
        let got = files.read(i, 1 << 20, "a file").map(|(_, b)| b);
        let checked = poisonlens::dataset::paths::resolve_existing(&d, rel)
            .and_then(|p| poisonlens::dataset::files::read_capped(&p, 1 << 20, "a file"));
        match (&got, &checked) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{rel}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{rel}: opened {got:?}, checked path {checked:?}"),
        }
    }
    let read = |i: usize| files.read(i, 1 << 20, "a file").map(|(_, b)| b).ok();
    assert_eq!(
        read(4).as_deref(),
        Some(&b"t"[..]),
        "absolute symlink inside"
    );
    assert!(read(5).is_none() && read(6).is_none() && read(7).is_none());
}

#[test]
fn hostile_images_are_refused_on_the_scans_read_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("img")).unwrap();
    image::GrayImage::new(28, 28)
        .save(d.join("img/ok.png"))
        .unwrap();
    image::GrayImage::new(8193, 8193)
        .save(d.join("img/wide.png"))
        .unwrap();
    fifo(&d.join("img"), "pipe.png");
    #[cfg(unix)]
    std::os::unix::fs::symlink("/dev/zero", d.join("img/zero.png")).unwrap();
    let names = ["ok", "pipe", "wide", "zero", "gone"];
    let mut s = String::from("id,label,path\n");
    for (i, n) in names.iter().enumerate() {
        s += &format!("{n},{},img/{n}.png\n", ["cat", "dog"][i % 2]);
    }
    std::fs::write(d.join("manifest.csv"), s).unwrap();
    let ds = Dataset::open(&d.join("manifest.csv"), &OpenOptions::default()).unwrap();
    let (digests, hashes, key) = within_a_minute(move || {
        let digests: Vec<Result<(), String>> = images::digest_all(&ds, &|_| {})
            .into_iter()
            .map(|r| r.map(|_| ()))
            .collect();
        let files = ds.files();
        let hashes: Vec<Result<String, String>> = (0..ds.len())
            .map(|i| files.sha256(i).map_err(|e| e.to_string()))
            .collect();
        let opts = poisonlens::detect::ScanOptions {
            use_images: true,
            ..Default::default()
        };
        let key = poisonlens::detect::cache::key(&ds, &opts).map(|_| ());
        (digests, hashes, key)
    });
    assert!(digests[0].is_ok() && hashes[0].is_ok());
    let why = |k: usize| digests[k].clone().unwrap_err();
    assert!(
        why(1).contains("pipe.png") && why(1).contains("FIFO"),
        "{}",
        why(1)
    );
    assert!(
        why(2).contains("wide.png") && why(2).contains("8193×8193"),
        "{}",
        why(2)
    );
    assert!(
        why(3).contains("zero.png") && why(3).contains("outside"),
        "{}",
        why(3)
    );
    assert!(why(4).contains("gone.png"), "{}", why(4));
    for k in [1, 3, 4] {
        let e = hashes[k].clone().unwrap_err();
        assert!(e.contains(&format!("{}.png", names[k])), "{e}");
    }
    assert!(key.is_ok(), "{key:?}");
}
