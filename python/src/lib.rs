//! `rensou._rensou`: the Rust half of the `rensou` Python package (the other half,
//! `python/rensou/__init__.py`, adds `Study`).
//!
//! - [`Dataset`]: a paired dataset file (`rensou data build`): splits, modalities, items and
//!   labels as numpy arrays.
//! - [`Run`]: a trained run directory (`rensou train`, or `STUDY/runs/<id>`): its config,
//!   metrics and probe scalars as plain Python data; `encode`, `decode` and `generate` on the
//!   CPU backend the `rensou` binary uses, with the GIL released while they compute.
//! - `RensouError`: every failure, carrying rensou's one-line message.
//!
//! Items go in and come out as the dataset stores them: `uint8` arrays of shape
//! `[n, *item_shape]` (floats in `[0, 1]` are accepted and rounded to bytes, as the dataset
//! would have stored them), so `Run.encode` on a dataset's items gives exactly the latents the
//! probes analyse (`latents.h5`).

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::PathBuf;

use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rensou::backend::{self, Inner};
use rensou_api::probe::{ModelView, Scalars};
use rensou_api::Split;
use rensou_store::DatasetFile;
use rensou_train::analysis::{MmvaeView, PROBES_DIR};

pyo3::create_exception!(
    rensou,
    RensouError,
    PyException,
    "A rensou error: the message is the line the rensou binary would print."
);

/// The error as one line, as the binary reports it.
fn fail(e: impl Display) -> PyErr {
    let text = e.to_string();
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    RensouError::new_err(line)
}

fn split(name: &str) -> PyResult<Split> {
    match name {
        "train" => Ok(Split::Train),
        "test" => Ok(Split::Test),
        other => Err(fail(format!(
            "no split `{other}`: a dataset has `train` and `test`"
        ))),
    }
}

/// Plain Python data (dicts, lists, numbers, strings) from JSON text.
fn from_json<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

fn to_json(py: Python<'_>, value: &impl serde::Serialize) -> PyResult<Py<PyAny>> {
    let text = serde_json::to_string(value).map_err(fail)?;
    Ok(from_json(py, &text)?.unbind())
}

/// Item bytes from a numpy array of `uint8` (or of floats in `[0, 1]`), `[n, *shape]` or one
/// item `[*shape]`; returns the bytes and `n`.
fn item_bytes(items: &Bound<'_, PyAny>, shape: &[usize], what: &str) -> PyResult<(Vec<u8>, usize)> {
    let check = |dims: &[usize]| -> PyResult<usize> {
        if dims == shape {
            return Ok(1);
        }
        if dims.len() == shape.len() + 1 && dims[1..] == *shape {
            return Ok(dims[0]);
        }
        let item = shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Err(fail(format!(
            "{what} takes items of shape [n, {item}] (or one item [{item}]), got an array of \
             shape {dims:?}"
        )))
    };
    if let Ok(a) = items.cast::<PyArrayDyn<u8>>() {
        let n = check(a.shape())?;
        let bytes = a.to_vec().map_err(fail)?;
        return Ok((bytes, n));
    }
    let float = items
        .py()
        .import("numpy")?
        .call_method1("asarray", (items, "float32"))?;
    let a = float.cast::<PyArrayDyn<f32>>().map_err(|_| {
        fail(format!(
            "{what} takes a numpy array of uint8 or of floats in [0, 1]"
        ))
    })?;
    let n = check(a.shape())?;
    let values = a.to_vec().map_err(fail)?;
    if let Some(v) = values.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(fail(format!(
            "{what} takes float items in [0, 1] (or uint8), found {v}"
        )));
    }
    Ok((
        values.iter().map(|v| (v * 255.0).round() as u8).collect(),
        n,
    ))
}

/// The shape `[n, *item_shape]` of `n` items.
fn batch_shape(n: usize, item_shape: &[usize]) -> Vec<usize> {
    std::iter::once(n)
        .chain(item_shape.iter().copied())
        .collect()
}

/// A float32 numpy array of `shape` from `values`.
fn array<'py>(py: Python<'py>, values: Vec<f32>, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_vec(py, values)
        .reshape(shape.to_vec())?
        .into_any())
}

/// A paired dataset file written by `rensou data build` (HDF5).
#[pyclass(module = "rensou", frozen)]
struct Dataset {
    path: PathBuf,
    modalities: Vec<String>,
    splits: Vec<String>,
}

impl Dataset {
    fn open(&self) -> PyResult<DatasetFile> {
        DatasetFile::open(&self.path).map_err(fail)
    }
}

#[pymethods]
impl Dataset {
    /// Opens the dataset at `path`.
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        let file = DatasetFile::open(&path).map_err(fail)?;
        Ok(Dataset {
            modalities: file.modalities().to_vec(),
            splits: file
                .splits()
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            path,
        })
    }

    /// The file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The modalities, in the file's order.
    #[getter]
    fn modalities(&self) -> Vec<String> {
        self.modalities.clone()
    }

    /// The splits (`train`, `test`).
    #[getter]
    fn splits(&self) -> Vec<String> {
        self.splits.clone()
    }

    /// The number of pairs of `split`.
    fn pairs(&self, split: &str) -> PyResult<usize> {
        self.open()?.pairs(self::split(split)?).map_err(fail)
    }

    /// The shape of one item of `modality`.
    fn item_shape(&self, modality: &str) -> PyResult<Vec<usize>> {
        let file = self.open()?;
        let s = file.splits().first().copied().unwrap_or(Split::Test);
        Ok(file.modality_info(s, modality).map_err(fail)?.item_shape)
    }

    /// The items of `modality` in `split`: a `uint8` array `[pairs, *item_shape]`, row `i` of
    /// every modality one pair.
    fn items<'py>(
        &self,
        py: Python<'py>,
        split: &str,
        modality: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let file = self.open()?;
        let set = file.read(self::split(split)?, modality).map_err(fail)?;
        let n = set.data.len() / set.shape.iter().product::<usize>().max(1);
        let shape = batch_shape(n, &set.shape);
        Ok(PyArray1::from_vec(py, set.data).reshape(shape)?.into_any())
    }

    /// The labels of `modality` in `split`: `{name: int64 array [pairs]}`.
    fn labels<'py>(
        &self,
        py: Python<'py>,
        split: &str,
        modality: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let labels = self
            .open()?
            .read_labels(self::split(split)?, modality)
            .map_err(fail)?;
        let d = PyDict::new(py);
        for (name, values) in labels {
            d.set_item(name, PyArray1::from_vec(py, values))?;
        }
        Ok(d)
    }

    /// What each label's values mean: `{label: {value: name}}` (empty for plain numbers such
    /// as `number`).
    fn label_names<'py>(&self, py: Python<'py>, modality: &str) -> PyResult<Bound<'py, PyDict>> {
        let file = self.open()?;
        let s = file.splits().first().copied().unwrap_or(Split::Test);
        let info = file.modality_info(s, modality).map_err(fail)?;
        let d = PyDict::new(py);
        for l in info.labels {
            d.set_item(l.spec.name, l.spec.values)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "rensou.Dataset({:?}: modalities {}, splits {})",
            self.path,
            self.modalities.join(", "),
            self.splits.join(", ")
        )
    }
}

/// A trained run directory (`rensou train --out DIR`, or a study's `runs/<model>-s<seed>`; a
/// snapshot `runs/<id>/snapshots/epoch-NNN` too), loaded on the CPU.
#[pyclass(module = "rensou", frozen)]
struct Run {
    path: PathBuf,
    view: MmvaeView<Inner>,
    config_json: String,
    epoch: usize,
}

#[pymethods]
impl Run {
    /// Loads the run in `path` (its last complete checkpoint).
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let p = path.clone();
        let loaded = py.detach(move || -> rensou_api::Result<_> {
            let device = backend::device();
            let (model, config, epoch) = rensou_train::load_run_with_epoch::<Inner>(&p, &device)?;
            let description = format!(
                "{} on {} ({})",
                config.data.modalities.join("+"),
                p.display(),
                backend::describe(&device)
            );
            let json = serde_json::to_string(&config)
                .map_err(|e| rensou_api::Error::Data(e.to_string()))?;
            Ok((MmvaeView::new(model, device, description), json, epoch))
        });
        let (view, config_json, epoch) = loaded.map_err(fail)?;
        Ok(Run {
            path,
            view,
            config_json,
            epoch,
        })
    }

    /// The run directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The epoch of the checkpoint loaded.
    #[getter]
    fn epoch(&self) -> usize {
        self.epoch
    }

    /// The modalities, in model order.
    #[getter]
    fn modalities(&self) -> Vec<String> {
        self.view.modalities()
    }

    /// The latent dimension.
    #[getter]
    fn latent_dim(&self) -> usize {
        self.view.latent_dim()
    }

    /// The resolved config (`config.toml`) as a dict.
    #[getter]
    fn config(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(from_json(py, &self.config_json)?.unbind())
    }

    /// Every epoch's metrics (`metrics.jsonl`) as a list of dicts.
    #[getter]
    fn metrics(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let m = rensou_train::read_metrics(&self.path).map_err(fail)?;
        to_json(py, &m)
    }

    /// The probes' declared scalars: `{probe: {metric: {subject: value}}}` (the subject a
    /// modality, `a->b`, or `""` for the whole model); empty when no probe has run.
    #[getter]
    fn probe_scalars(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let dir = self.path.join(PROBES_DIR);
        let mut all: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>> = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten().filter(|e| e.path().is_dir()) {
                if let Some(s) = Scalars::read(&e.path()).map_err(fail)? {
                    all.insert(e.file_name().to_string_lossy().into_owned(), s.values);
                }
            }
        }
        to_json(py, &all)
    }

    /// The shape of one item of `modality`.
    fn item_shape(&self, modality: &str) -> PyResult<Vec<usize>> {
        self.view.item_shape(modality).map_err(fail)
    }

    /// Encodes `items` of `modality` (`uint8` `[n, *item_shape]`, or floats in `[0, 1]`):
    /// returns `(loc, scale)`, float32 arrays `[n, latent_dim]` of the posterior (`loc` is what
    /// the probes analyse).
    fn encode<'py>(
        &self,
        py: Python<'py>,
        modality: &str,
        items: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let shape = self.view.item_shape(modality).map_err(fail)?;
        let (bytes, n) = item_bytes(items, &shape, "encode")?;
        let view = &self.view;
        let latents = py.detach(|| view.encode(modality, &bytes)).map_err(fail)?;
        let dims = [n, latents.dim];
        let loc = array(py, latents.loc, &dims)?;
        let scale = array(py, latents.scale, &dims)?;
        PyTuple::new(py, [loc, scale])
    }

    /// Decodes latents `z` (`[n, latent_dim]`) into items of `modality`: float32
    /// `[n, *item_shape]`, values in `[0, 1]` (the likelihood's location).
    fn decode<'py>(
        &self,
        py: Python<'py>,
        modality: &str,
        z: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let shape = self.view.item_shape(modality).map_err(fail)?;
        let dim = self.view.latent_dim();
        let z = py
            .import("numpy")?
            .call_method1("asarray", (z, "float32"))?;
        let z = z
            .cast::<PyArrayDyn<f32>>()
            .map_err(|_| fail("decode takes a float array of latents [n, latent_dim]"))?;
        let n = match z.shape() {
            [n, d] if *d == dim => *n,
            [d] if *d == dim => 1,
            other => {
                return Err(fail(format!(
                    "decode takes latents of shape [n, {dim}], got {other:?}"
                )))
            }
        };
        let values = z.to_vec().map_err(fail)?;
        let view = &self.view;
        let out = py.detach(|| view.decode(modality, &values)).map_err(fail)?;
        array(py, out, &batch_shape(n, &shape))
    }

    /// Cross-modal generation: encodes `items` of `source` and decodes the locations as
    /// `target` (float32 `[n, *target item shape]`, values in `[0, 1]`).
    fn generate<'py>(
        &self,
        py: Python<'py>,
        source: &str,
        target: &str,
        items: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let shape = self.view.item_shape(source).map_err(fail)?;
        let target_shape = self.view.item_shape(target).map_err(fail)?;
        let (bytes, n) = item_bytes(items, &shape, "generate")?;
        let view = &self.view;
        let out = py
            .detach(|| -> rensou_api::Result<Vec<f32>> {
                let latents = view.encode(source, &bytes)?;
                view.decode(target, &latents.loc)
            })
            .map_err(fail)?;
        array(py, out, &batch_shape(n, &target_shape))
    }

    fn __repr__(&self) -> String {
        format!(
            "rensou.Run({:?}: {} at epoch {}, latent dim {})",
            self.path,
            self.view.modalities().join("+"),
            self.epoch,
            self.view.latent_dim()
        )
    }
}

/// Where `rensou.Run` computes: the backend and device line of the `rensou` binary.
#[pyfunction]
fn backend_name() -> String {
    backend::describe(&backend::device())
}

#[pymodule]
fn _rensou(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Dataset>()?;
    m.add_class::<Run>()?;
    m.add_function(wrap_pyfunction!(backend_name, m)?)?;
    m.add("RensouError", m.py().get_type::<RensouError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
