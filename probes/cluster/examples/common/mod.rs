//! What the benchmark examples share: their command line and input file.

/// The input path and thread count from the command line (`[PATH] [THREADS]`; defaults
/// `/tmp/kmeans_70000x20.f32` and 2) and the input's raw little-endian `f32` values.
pub fn read_input() -> Result<(String, usize, Vec<f32>), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "/tmp/kmeans_70000x20.f32".to_owned());
    let threads: usize = args.next().map(|t| t.parse()).transpose()?.unwrap_or(2);
    let bytes = std::fs::read(&path)?;
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok((path, threads, values))
}
