//! Survey mode: maps for every galaxy of a manifest, one shared model, resumable, and the
//! population outputs (`galaxies.csv`, the outshining figure).
//!
//! Layout of an output folder:
//!
//! ```text
//! OUT/galaxies/<id>/status.json   "ok" or the reason the galaxy failed (+ the map summary)
//! OUT/galaxies/<id>/maps.fits     maps.png, summary.json (as `sbipix map`)
//! OUT/galaxies.csv                one row per manifest row, in manifest order
//! OUT/outshining.png              Δ log M* (resolved − integrated) against log M*
//! ```
//!
//! Each galaxy is written into a temporary folder and renamed into place, so a galaxy folder with
//! a `status.json` is complete. A rerun skips galaxies whose status is `ok` (failed ones are tried
//! again: they fail fast, and a fixed input should be picked up). The population outputs are
//! rebuilt from the per-galaxy folders, so a run split over many processes (Dask, from Python)
//! produces the same files as a single one.

use crate::inference::model::Posterior;
use crate::products::map::{MapOptions, MapSummary, map_galaxy};
use crate::products::map_fits::write_maps;
use crate::{Error, Result};
use sbipix_io::ImageSet;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a galaxy's pixels come from.
#[derive(Debug, Clone, PartialEq)]
pub enum GalaxySource {
    /// A FITS cube with FLUX and ERR HDUs.
    Cube(PathBuf),
    /// Per-band images with σ maps; band names from the file names unless given.
    Images { images: Vec<PathBuf>, errors: Vec<PathBuf>, bands: Option<Vec<String>> },
}

/// One manifest row, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct GalaxyJob {
    /// 1-based row number in the manifest (for messages).
    pub row: usize,
    pub id: String,
    pub source: GalaxySource,
    pub redshift: Option<f64>,
    /// Segmentation map and the id to keep.
    pub seg: Option<(PathBuf, f64)>,
    /// Cutout (x0, y0, nx, ny) in pixels of the source.
    pub cutout: Option<(usize, usize, usize, usize)>,
    /// Flux unit override (as `--unit`).
    pub unit: Option<String>,
}

/// A manifest row: the job, or (id, reason) for a row that cannot be run.
pub type RowJob = std::result::Result<GalaxyJob, (String, String)>;

/// A manifest: the rows that parsed, and per-row problems (recorded as failed galaxies).
pub struct Manifest {
    pub path: PathBuf,
    /// In manifest order: the job, or (id, reason) for a row that cannot be run.
    pub rows: Vec<RowJob>,
}

const COLUMNS: [&str; 13] = ["id", "cube", "images", "errors", "bands", "redshift", "seg", "seg_id", "x0", "y0", "nx", "ny", "unit"];

/// A folder name for an id: the id itself when it is a plain name.
fn id_ok(id: &str) -> std::result::Result<(), String> {
    if id.is_empty() {
        return Err("empty id".into());
    }
    if id == "." || id == ".." || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c)) {
        return Err(format!("id `{id}` must be letters, digits and - _ . + only (it names the galaxy's folder)"));
    }
    Ok(())
}

/// Reads a manifest CSV. Columns: `id`, `redshift`, and either `cube` or `images` + `errors`
/// (paths separated by `;`, optional `bands` likewise); optional `seg` + `seg_id`, a cutout
/// `x0,y0,nx,ny`, and `unit`. Paths are relative to the manifest's folder. A header problem is an
/// error; a row problem (missing file, duplicate id, bad number) is recorded for that galaxy.
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    let rows = read_rows(path, &|_| true)?.into_iter().map(|r| r.expect("every row wanted")).collect();
    Ok(Manifest { path: path.to_path_buf(), rows })
}

/// Row `index` (0-based) of a manifest and the number of rows, checking that row's files only
/// (a worker mapping one galaxy of a large survey does not stat every file of the survey); ids
/// are still checked against the earlier rows.
pub fn read_manifest_row(path: &Path, index: usize) -> Result<(usize, RowJob)> {
    let mut rows = read_rows(path, &|k| k == index)?;
    let n = rows.len();
    match rows.get_mut(index).and_then(Option::take) {
        Some(r) => Ok((n, r)),
        None => Err(Error::file(path, format!("no row {index} (the manifest has {n})"))),
    }
}

/// The rows of a manifest; those `want` rejects are only checked for their id (None).
fn read_rows(path: &Path, want: &dyn Fn(usize) -> bool) -> Result<Vec<Option<RowJob>>> {
    let file = path.display().to_string();
    let ferr = |reason: String| Error::file(&file, reason);
    let text = crate::error::read_file(path)?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut rdr = csv::ReaderBuilder::new().comment(Some(b'#')).trim(csv::Trim::All).flexible(false).from_reader(text.as_bytes());
    let header: Vec<String> = rdr.headers().map_err(|e| Error::read(&file, e))?.iter().map(str::to_string).collect();
    for h in &header {
        if !COLUMNS.contains(&h.as_str()) {
            return Err(ferr(format!("unknown column `{h}`; allowed: {}", COLUMNS.join(", "))));
        }
    }
    if !header.iter().any(|h| h == "id") {
        return Err(ferr("missing column `id`".into()));
    }
    if !header.iter().any(|h| h == "cube" || h == "images") {
        return Err(ferr("needs a `cube` column or `images` + `errors` columns".into()));
    }
    if header.iter().any(|h| h == "images") != header.iter().any(|h| h == "errors") {
        return Err(ferr("`images` and `errors` go together".into()));
    }
    let mut rows = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let row = i + 1;
        let rec = rec.map_err(|e| Error::Row {
            file: file.clone(),
            row,
            line: e.position().map_or(0, |p| p.line() as usize),
            column: String::new(),
            reason: e.to_string(),
        })?;
        let get = |c: &str| header.iter().position(|h| h == c).and_then(|k| rec.get(k)).filter(|v| !v.is_empty()).map(str::to_string);
        let id = get("id").unwrap_or_default();
        // ids: well-formed and unique (the first occurrence keeps the id's folder)
        let registered = id_ok(&id).and_then(|()| match seen.get(&id) {
            Some(first) => Err(format!("duplicate id (first on row {first})")),
            None => {
                seen.insert(id.clone(), row);
                Ok(())
            }
        });
        rows.push(want(i).then(|| {
            registered
                .and_then(|()| parse_row(row, &id, &get, &base))
                .map_err(|r| (if id.is_empty() { format!("row{row}") } else { id.clone() }, r))
        }));
    }
    if rows.is_empty() {
        return Err(ferr("the manifest has no rows".into()));
    }
    Ok(rows)
}

fn parse_row(row: usize, id: &str, get: &dyn Fn(&str) -> Option<String>, base: &Path) -> std::result::Result<GalaxyJob, String> {
    let path = |p: &str| -> std::result::Result<PathBuf, String> {
        let q = base.join(p);
        if q.is_file() { Ok(q) } else { Err(format!("{}: no such file", q.display())) }
    };
    let list = |c: &str| -> std::result::Result<Vec<PathBuf>, String> {
        get(c).map(|v| v.split(';').map(|p| path(p.trim())).collect()).unwrap_or(Ok(Vec::new()))
    };
    let num = |c: &str| -> std::result::Result<Option<f64>, String> {
        get(c)
            .map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| format!("column `{c}`: `{v}` is not a number")))
            .transpose()
    };
    let source = match (get("cube"), get("images")) {
        (Some(c), None) => GalaxySource::Cube(path(&c)?),
        (None, Some(_)) => {
            let (images, errors) = (list("images")?, list("errors")?);
            if images.len() != errors.len() {
                return Err(format!("{} images but {} error maps", images.len(), errors.len()));
            }
            let bands = get("bands").map(|b| b.split(';').map(|s| s.trim().to_string()).collect::<Vec<_>>());
            if let Some(b) = &bands
                && b.len() != images.len()
            {
                return Err(format!("{} band names for {} images", b.len(), images.len()));
            }
            GalaxySource::Images { images, errors, bands }
        }
        (Some(_), Some(_)) => return Err("give `cube` or `images`, not both".into()),
        (None, None) => return Err("no `cube` and no `images`".into()),
    };
    let seg = match (get("seg"), num("seg_id")?) {
        (Some(s), Some(i)) => Some((path(&s)?, i)),
        (None, None) => None,
        _ => return Err("`seg` and `seg_id` go together".into()),
    };
    let cut: Vec<Option<f64>> = ["x0", "y0", "nx", "ny"].iter().map(|c| num(c)).collect::<std::result::Result<_, _>>()?;
    let cutout = match cut.as_slice() {
        [Some(a), Some(b), Some(c), Some(d)] if [*a, *b, *c, *d].iter().all(|v| *v >= 0.0 && v.fract() == 0.0) => {
            Some((*a as usize, *b as usize, *c as usize, *d as usize))
        }
        [None, None, None, None] => None,
        _ => return Err("a cutout needs whole, non-negative x0, y0, nx and ny".into()),
    };
    Ok(GalaxyJob { row, id: id.to_string(), source, redshift: num("redshift")?, seg, cutout, unit: get("unit") })
}

/// What `status.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GalaxyStatus {
    pub id: String,
    /// `ok` or the reason the galaxy could not be mapped.
    pub status: String,
    pub summary: Option<MapSummary>,
}

impl GalaxyStatus {
    /// True when the galaxy was mapped ([`super::STATUS_OK`]).
    pub fn is_ok(&self) -> bool {
        self.status == super::STATUS_OK
    }
}

/// Options shared by every galaxy of a survey.
#[derive(Clone)]
pub struct SurveyOptions {
    pub n_draws: usize,
    pub snr_min: f64,
    pub seed: u64,
    pub ppc: Option<(std::sync::Arc<sbipix_sps::SpsModel>, sbipix_sim::Prior)>,
    /// Exact posteriors ([`MapOptions::refine`]); None: the network alone.
    pub refine: Option<(crate::inference::refine::RefineSettings, std::sync::Arc<sbipix_sps::SpsModel>, sbipix_sim::Prior)>,
    /// How a galaxy without a redshift (none in the manifest, no REDSHIFT keyword) gets its
    /// photometric one ([`MapOptions::photo_z`]).
    pub photo_z: crate::inference::photoz::PhotoZSettings,
    /// Photometric redshifts for every galaxy, whatever the manifest says.
    pub photo_z_always: bool,
}

/// The folder of a galaxy's outputs.
pub fn galaxy_dir(out: &Path, id: &str) -> PathBuf {
    out.join("galaxies").join(id)
}

/// The recorded status of a galaxy, if it has one.
pub fn read_status(out: &Path, id: &str) -> Option<GalaxyStatus> {
    serde_json::from_str(&std::fs::read_to_string(galaxy_dir(out, id).join("status.json")).ok()?).ok()
}

fn load_images(job: &GalaxyJob, log: &dyn Fn(&str)) -> Result<ImageSet> {
    let img = match &job.source {
        GalaxySource::Cube(c) => ImageSet::from_cube(c, job.unit.as_deref(), log)?,
        GalaxySource::Images { images, errors, bands } => {
            let names: Vec<String> = match bands {
                Some(b) => b.clone(),
                None => images
                    .iter()
                    .map(|p| sbipix_sps::band_name_from_file_name(&p.file_name().unwrap_or_default().to_string_lossy()))
                    .collect(),
            };
            ImageSet::from_images(images, errors, &names, false, job.unit.as_deref(), log)?
        }
    };
    match job.cutout {
        Some((x0, y0, nx, ny)) => Ok(img.crop(x0, y0, nx, ny)?),
        None => Ok(img),
    }
}

/// Maps one galaxy into `OUT/galaxies/<id>` (atomically) and records its status; returns it. A
/// galaxy already done (`ok`) is not redone. Errors of the galaxy itself become its status; only
/// an unwritable output folder is an error.
pub fn run_galaxy(post: &Posterior, job: &RowJob, out: &Path, opts: &SurveyOptions) -> Result<GalaxyStatus> {
    let j = match job {
        Ok(j) => j,
        // a row that cannot run (bad id, duplicate, missing file) owns no folder: a duplicate id
        // must not overwrite the first galaxy's outputs
        Err((id, reason)) => return Ok(GalaxyStatus { id: id.clone(), status: reason.clone(), summary: None }),
    };
    let id = j.id.clone();
    if let Some(s) = read_status(out, &id)
        && s.is_ok()
    {
        return Ok(s);
    }
    let dir = out.join("galaxies");
    std::fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
    let mut status = GalaxyStatus { id: id.clone(), status: String::new(), summary: None };
    // the galaxy's folder appears complete (maps + status.json) or not at all
    crate::write_dir_atomic(&galaxy_dir(out, &id), true, |d| -> Result<()> {
        let result = (|| -> Result<MapSummary> {
            let quiet = |_: &str| {};
            let img = load_images(j, &quiet)?;
            let z = j.redshift.or(img.redshift);
            let mut mo = MapOptions::new(z.unwrap_or(0.0));
            if z.is_none() || opts.photo_z_always {
                mo.photo_z = Some(opts.photo_z);
            }
            mo.n_draws = opts.n_draws;
            mo.snr_min = opts.snr_min;
            mo.seed = opts.seed;
            mo.ppc = opts.ppc.clone();
            mo.refine = opts.refine.clone();
            if let Some((seg, sid)) = &j.seg {
                mo.segmentation = Some((sbipix_io::read_segmentation(seg, *sid, j.cutout, img.ny, img.nx)?, *sid));
            }
            let m = map_galaxy(post, &img, &mo, &quiet)?;
            write_maps(d, &img, &m)?;
            Ok(m.summary)
        })();
        // a galaxy's own failure is its status, not an error of the survey
        (status.status, status.summary) = match result {
            Ok(s) => (super::STATUS_OK.into(), Some(s)),
            Err(e) => {
                // no partial maps beside a failed status
                for f in std::fs::read_dir(d).into_iter().flatten().flatten() {
                    let _ = std::fs::remove_file(f.path());
                }
                (e.to_string(), None)
            }
        };
        let text = serde_json::to_string_pretty(&status).expect("status serialises");
        std::fs::write(d.join("status.json"), text).map_err(|e| Error::write(d.join("status.json"), e))
    })?;
    Ok(status)
}

/// Extra columns of `galaxies.csv`: their names, and the values by galaxy id.
pub type ExtraColumns<'a> = (&'a [String], &'a std::collections::HashMap<String, Vec<String>>);

/// One row of `galaxies.csv`.
#[derive(Debug, Clone)]
pub struct GalaxyRow {
    pub id: String,
    pub status: String,
    pub summary: Option<MapSummary>,
}

impl GalaxyRow {
    /// True when the galaxy was mapped ([`super::STATUS_OK`]).
    pub fn is_ok(&self) -> bool {
        self.status == super::STATUS_OK
    }
}

/// Column names of `galaxies.csv`.
pub const GALAXY_COLUMNS: [&str; 28] = [
    "id",
    "status",
    "redshift",
    "n_pixels",
    "log_mstar_resolved",
    "log_mstar_resolved_p16",
    "log_mstar_resolved_p84",
    "log_mstar_integrated",
    "log_mstar_integrated_p16",
    "log_mstar_integrated_p84",
    "delta_log_mstar",
    "log_sfr_100myr_resolved",
    "log_sfr_100myr_resolved_p16",
    "log_sfr_100myr_resolved_p84",
    "log_sfr_100myr_integrated",
    "log_sfr_100myr_integrated_p16",
    "log_sfr_100myr_integrated_p84",
    "mass_weighted_age_gyr_resolved",
    "mass_weighted_age_gyr_integrated",
    "av_mag_resolved",
    "av_mag_integrated",
    "logzsol_resolved",
    "logzsol_integrated",
    "ppc_median_chi2",
    "ms_per_pixel",
    "z_phot_p16",
    "z_phot_p84",
    "z_phot_flags",
];

fn row_values(r: &GalaxyRow) -> Vec<String> {
    let f = |v: f64| if v.is_finite() { format!("{v:.4}") } else { String::new() };
    let mut out = vec![r.id.clone(), r.status.clone()];
    match &r.summary {
        None => out.extend(std::iter::repeat_n(String::new(), GALAXY_COLUMNS.len() - 2)),
        Some(s) => {
            let (res, int) = (s.log_mstar_resolved, s.log_mstar_integrated);
            let (sr, si) = (s.log_sfr_100myr_resolved, s.log_sfr_100myr_integrated);
            let mw = |n: &str| s.resolved_mass_weighted.get(n).copied().unwrap_or(f64::NAN);
            let it = |n: &str| s.integrated.get(n).map_or(f64::NAN, |v| v[1]);
            out.push(f(s.redshift));
            out.push(s.n_pixels.to_string());
            for v in [res[1], res[0], res[2], int[1], int[0], int[2], res[1] - int[1], sr[1], sr[0], sr[2], si[1], si[0], si[2]] {
                out.push(f(v));
            }
            for n in ["mass_weighted_age_gyr", "av_mag", "logzsol"] {
                out.push(f(mw(n)));
                out.push(f(it(n)));
            }
            out.push(f(s.ppc_median_chi2_reduced.unwrap_or(f64::NAN)));
            out.push(f(s.ms_per_pixel));
            match &s.photo_z {
                Some(pz) => {
                    out.push(f(pz.posterior.percentiles[0]));
                    out.push(f(pz.posterior.percentiles[2]));
                    out.push(pz.posterior.flag_string());
                }
                None => out.extend(std::iter::repeat_n(String::new(), 3)),
            }
        }
    }
    out
}

/// Removes temporary galaxy folders left by processes that were killed mid-galaxy (call when no
/// galaxy of this survey is being mapped any more).
pub fn remove_stale_temporaries(out: &Path) {
    if let Ok(rd) = std::fs::read_dir(out.join("galaxies")) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(".sbipix-tmp-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Writes `galaxies.csv` (atomically) and the outshining figure from the per-galaxy statuses,
/// in manifest order. `extra` adds columns (e.g. the truth of a synthetic survey) by id.
pub fn write_population(out: &Path, rows: &[GalaxyRow], extra: Option<ExtraColumns<'_>>) -> Result<()> {
    sbipix_io::write_atomic(&out.join("galaxies.csv"), |w| {
        let mut wr = csv::Writer::from_writer(w);
        let mut header: Vec<String> = GALAXY_COLUMNS.iter().map(|s| s.to_string()).collect();
        if let Some((names, _)) = extra {
            header.extend(names.iter().cloned());
        }
        wr.write_record(&header)?;
        for r in rows {
            let mut v = row_values(r);
            if let Some((names, by_id)) = extra {
                match by_id.get(&r.id) {
                    Some(x) => v.extend(x.iter().cloned()),
                    None => v.extend(std::iter::repeat_n(String::new(), names.len())),
                }
            }
            wr.write_record(&v)?;
        }
        wr.flush()?;
        Ok(())
    })?;
    let pts: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.summary.as_ref())
        .map(|s| (s.log_mstar_resolved[1], s.log_mstar_resolved[1] - s.log_mstar_integrated[1]))
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .collect();
    crate::products::plots::outshining::outshining_png(&out.join("outshining.png"), &pts)?;
    Ok(())
}

/// Running median of y in bins of x (at least 5 points per bin).
pub fn running_median(pts: &[(f64, f64)], bins: usize) -> Vec<(f64, f64)> {
    if pts.len() < 5 {
        return Vec::new();
    }
    let mut p = pts.to_vec();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    let per = (p.len() / bins.max(1)).max(5);
    p.chunks(per)
        .filter(|c| c.len() >= 5 || p.len() < 10)
        .map(|c| {
            let mut xs: Vec<f64> = c.iter().map(|v| v.0).collect();
            let mut ys: Vec<f64> = c.iter().map(|v| v.1).collect();
            xs.sort_by(f64::total_cmp);
            ys.sort_by(f64::total_cmp);
            (sbipix_stats::quantile_sorted(&xs, 0.5), sbipix_stats::quantile_sorted(&ys, 0.5))
        })
        .collect()
}

/// Runs every galaxy of the manifest (skipping those done), then writes the population outputs.
/// `progress(done, total, id)` after each galaxy. Returns the rows in manifest order.
pub fn run_survey(
    post: &Posterior,
    manifest: &Manifest,
    out: &Path,
    opts: &SurveyOptions,
    progress: &dyn Fn(usize, usize, &str),
) -> Result<Vec<GalaxyRow>> {
    std::fs::create_dir_all(out).map_err(|e| Error::write(out, e))?;
    let n = manifest.rows.len();
    let mut rows = Vec::with_capacity(n);
    for (k, job) in manifest.rows.iter().enumerate() {
        let st = run_galaxy(post, job, out, opts)?;
        progress(k + 1, n, &st.id);
        rows.push(GalaxyRow { id: st.id, status: st.status, summary: st.summary });
    }
    remove_stale_temporaries(out);
    Ok(rows)
}

/// The rows of `galaxies.csv` from the per-galaxy folders (for runs split over processes):
/// a galaxy without a status is `not run`.
pub fn collect(manifest: &Manifest, out: &Path) -> Vec<GalaxyRow> {
    manifest
        .rows
        .iter()
        .map(|job| {
            let (id, bad) = match job {
                Ok(j) => (j.id.clone(), None),
                Err((id, r)) => (id.clone(), Some(r.clone())),
            };
            if let Some(r) = bad {
                return GalaxyRow { id, status: r, summary: None };
            }
            match read_status(out, &id) {
                Some(s) => GalaxyRow { id, status: s.status, summary: s.summary },
                None => GalaxyRow { id, status: "not run".into(), summary: None },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_reads_as_in_the_whole_manifest() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.fits"), b"x").unwrap();
        let text = "id,cube,redshift\ng1,a.fits,1\ng2,missing.fits,2\ng1,a.fits,3\nbad/id,a.fits,1\ng3,a.fits,x\ng4,a.fits,\n";
        let p = d.path().join("m.csv");
        std::fs::write(&p, text).unwrap();
        let all = read_manifest(&p).unwrap();
        assert_eq!(all.rows.len(), 6);
        for (k, r) in all.rows.iter().enumerate() {
            let (n, one) = read_manifest_row(&p, k).unwrap();
            assert_eq!(n, 6);
            assert_eq!(&one, r, "row {k}");
        }
        assert!(all.rows[1].as_ref().unwrap_err().1.contains("no such file"));
        assert!(all.rows[2].as_ref().unwrap_err().1.contains("duplicate id (first on row 1)"));
        assert!(all.rows[4].as_ref().unwrap_err().1.contains("`x` is not a number"));
        assert_eq!(all.rows[5].as_ref().unwrap().redshift, None);
        assert!(read_manifest_row(&p, 6).unwrap_err().to_string().contains("no row 6"));
    }
}
