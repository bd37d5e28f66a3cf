use poisonlens::dataset::{Dataset, OpenOptions, images};
use poisonlens::linalg::Pca;
use std::time::Instant;
fn main() {
    let p = std::env::args().nth(1).unwrap();
    let ds = Dataset::open(std::path::Path::new(&p), &OpenOptions { embeddings: None }).unwrap();
    let d = images::digest_all(&ds, &|_| {});
    let t = Instant::now();
    let full = images::pixel_features(&d).unwrap();
    println!("features {:.3}", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let pca = Pca::fit(&full, 32);
    println!("pca fit {:.3}", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let m = pca.transform_matrix(&full);
    println!("transform {:.3}", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let _nb = poisonlens::knn::knn(&m, 40);
    println!("knn {:.3}", t.elapsed().as_secs_f64());
    let e = ds.embeddings.as_ref().unwrap();
    let t = Instant::now();
    let _nb = poisonlens::knn::knn(e, 40);
    println!("knn emb {:.3}", t.elapsed().as_secs_f64());
}
