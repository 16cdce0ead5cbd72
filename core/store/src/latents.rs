//! Latents written for use outside rensou (h5py, MATLAB): the `rensou-latents` HDF5 file.

use std::collections::BTreeMap;
use std::path::Path;

use rensou_api::probe::{Latents, ProbeData};
use rensou_api::{Error, Result};

use crate::str_attr;

/// Writes latents with their labels to HDF5, atomically:
/// `/{modality}/loc`, `/{modality}/scale` (float32 `[N, latent]`) and
/// `/{modality}/labels/{name}` (int64 `[N]`); row i of every modality is pair i of the split.
pub fn write_latents(
    path: &Path,
    data: &ProbeData,
    latents: &BTreeMap<String, Latents>,
    description: &str,
) -> Result<()> {
    let err = |e: hdf5::Error| Error::Hdf5 {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    rensou_api::fsutil::write_atomically(path, |tmp| {
        let f = hdf5::File::create(tmp).map_err(err)?;
        str_attr(&f, "format", "rensou-latents", path)?;
        str_attr(&f, "split", data.split.as_str(), path)?;
        str_attr(&f, "model", description, path)?;
        for (m, l) in latents {
            let g = f.create_group(m).map_err(err)?;
            for (name, values) in [("loc", &l.loc), ("scale", &l.scale)] {
                let arr = ndarray::ArrayView2::from_shape((l.n, l.dim), values)
                    .map_err(|e| Error::Data(e.to_string()))?;
                g.new_dataset_builder()
                    .with_data(arr)
                    .create(name)
                    .map_err(err)?;
            }
            let lg = g.create_group("labels").map_err(err)?;
            if let Some(set) = data.sets.get(m) {
                for (name, values) in &set.labels {
                    lg.new_dataset_builder()
                        .with_data(ndarray::ArrayView1::from(values.as_slice()))
                        .create(name.as_str())
                        .map_err(err)?;
                }
            }
        }
        f.close().map_err(err)
    })
}
