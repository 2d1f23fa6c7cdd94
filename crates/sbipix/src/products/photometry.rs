//! Catalogs: one galaxy per row. `photometry_catalog` reads physical parameters from CSV, runs
//! the forward model on every row (in parallel) and writes the photometry atomically.

use crate::{Error, Result};
use rayon::prelude::*;
use sbipix_sps::{GalaxyParams, SfhFamily, SfhShape, SfhSpec, SpsModel, Workspace};
use std::path::Path;

/// Parameter columns accepted in a `photometry` input table: (name, default if optional).
/// `tau_gyr` is required for the τ families and refused for the others.
pub const PARAM_COLUMNS: [(&str, Option<f64>); 8] = [
    ("redshift", None),
    ("log_mass_formed", None),
    ("age_gyr", None),
    ("tau_gyr", None),
    ("logzsol", Some(0.0)),
    ("av_mag", Some(0.0)),
    ("logu", Some(-2.0)),
    ("eta", Some(1.0)),
];

/// A table of galaxy parameters read from CSV.
#[derive(Debug, Clone)]
pub struct ParamTable {
    /// Source file name (for messages).
    pub file: String,
    /// Optional `id` column.
    pub ids: Option<Vec<String>>,
    /// Column names in output order and their values, one Vec per column.
    pub columns: Vec<(String, Vec<f64>)>,
    pub family: SfhFamily,
}

impl ParamTable {
    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.1.len())
    }

    fn col(&self, name: &str) -> Option<&[f64]> {
        self.columns.iter().find(|c| c.0 == name).map(|c| c.1.as_slice())
    }

    /// Reads a CSV file (header row first; `#` comment lines allowed).
    pub fn read_csv(path: &Path, family: SfhFamily) -> Result<Self> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::read(&file, e))?;
        Self::parse_csv(&text, &file, family)
    }

    /// Parses CSV text (`file` names it in messages).
    pub fn parse_csv(text: &str, file: &str, family: SfhFamily) -> Result<Self> {
        let ferr = |reason: String| Error::file(file, reason);
        if family == SfhFamily::Tabulated {
            return Err(ferr("tabulated SFHs cannot be given in a parameter table; use the library API".into()));
        }
        let mut rdr = csv::ReaderBuilder::new().comment(Some(b'#')).trim(csv::Trim::All).flexible(false).from_reader(text.as_bytes());
        let headers = rdr.headers().map_err(|e| Error::read(file, e))?.clone();
        if headers.is_empty() {
            return Err(ferr("the table has no header row".into()));
        }
        let allowed: Vec<&str> =
            std::iter::once("id").chain(PARAM_COLUMNS.iter().map(|c| c.0).filter(|c| *c != "tau_gyr" || family.uses_tau())).collect();
        for (i, h) in headers.iter().enumerate() {
            if headers.iter().take(i).any(|g| g == h) {
                return Err(ferr(format!("column `{h}` appears twice")));
            }
            if !allowed.contains(&h) {
                let hint = if h == "tau_gyr" { format!(" (the {} SFH has no τ)", family.name()) } else { String::new() };
                return Err(ferr(format!("unknown column `{h}`{hint}; allowed columns: {}", allowed.join(", "))));
            }
        }
        let required: Vec<&str> =
            PARAM_COLUMNS.iter().filter(|(n, d)| d.is_none() && (*n != "tau_gyr" || family.uses_tau())).map(|c| c.0).collect();
        for r in &required {
            if !headers.iter().any(|h| h == *r) {
                return Err(ferr(format!("missing required column `{r}` (for the {} SFH)", family.name())));
            }
        }
        let used: Vec<(&str, Option<f64>)> = PARAM_COLUMNS.iter().copied().filter(|(n, _)| *n != "tau_gyr" || family.uses_tau()).collect();
        let mut columns: Vec<(String, Vec<f64>)> = used.iter().map(|(n, _)| (n.to_string(), Vec::new())).collect();
        let id_idx = headers.iter().position(|h| h == "id");
        let mut ids = id_idx.map(|_| Vec::new());
        for (row_i, rec) in rdr.records().enumerate() {
            let row = row_i + 1;
            let rec = rec.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line() as usize);
                Error::Row { file: file.into(), row, line, column: String::new(), reason: e.to_string() }
            })?;
            let line = rec.position().map_or(0, |p| p.line() as usize);
            if let (Some(i), Some(ids)) = (id_idx, ids.as_mut()) {
                ids.push(rec.get(i).unwrap_or("").to_string());
            }
            for (k, (name, default)) in used.iter().enumerate() {
                let cell = headers.iter().position(|h| h == *name).and_then(|i| rec.get(i)).unwrap_or("");
                let value = if cell.is_empty() {
                    default.ok_or_else(|| Error::Row {
                        file: file.into(),
                        row,
                        line,
                        column: format!(", column `{name}`"),
                        reason: "empty cell in a required column".into(),
                    })?
                } else {
                    let v: f64 = cell.parse().map_err(|_| Error::Row {
                        file: file.into(),
                        row,
                        line,
                        column: format!(", column `{name}`"),
                        reason: format!("`{cell}` is not a number"),
                    })?;
                    if !v.is_finite() {
                        return Err(Error::Row {
                            file: file.into(),
                            row,
                            line,
                            column: format!(", column `{name}`"),
                            reason: format!("{cell} is not a finite number"),
                        });
                    }
                    v
                };
                columns[k].1.push(value);
            }
        }
        if columns[0].1.is_empty() {
            return Err(ferr("the table has no data rows".into()));
        }
        Ok(Self { file: file.into(), ids, columns, family })
    }

    /// A table from named columns of equal length (the Python API's dict of arrays), checked
    /// as [`Self::parse_csv`] checks a file: unknown, missing and non-finite values are named.
    pub fn from_columns(given: Vec<(String, Vec<f64>)>, file: &str, family: SfhFamily) -> Result<Self> {
        let ferr = |reason: String| Error::file(file, reason);
        if family == SfhFamily::Tabulated {
            return Err(ferr("tabulated SFHs cannot be given in a parameter table; use the library API".into()));
        }
        let allowed: Vec<&str> = PARAM_COLUMNS.iter().map(|c| c.0).filter(|c| *c != "tau_gyr" || family.uses_tau()).collect();
        for (h, _) in &given {
            if !allowed.contains(&h.as_str()) {
                let hint = if h == "tau_gyr" { format!(" (the {} SFH has no τ)", family.name()) } else { String::new() };
                return Err(ferr(format!("unknown column `{h}`{hint}; allowed columns: {}", allowed.join(", "))));
            }
        }
        let n = given.first().map_or(0, |c| c.1.len());
        if let Some((h, v)) = given.iter().find(|c| c.1.len() != n) {
            return Err(ferr(format!("column `{h}` has {} values, `{}` has {n}", v.len(), given[0].0)));
        }
        if n == 0 {
            return Err(ferr("the table has no data rows".into()));
        }
        let mut columns = Vec::new();
        for (name, default) in PARAM_COLUMNS.iter().copied().filter(|(n, _)| *n != "tau_gyr" || family.uses_tau()) {
            let col = match given.iter().find(|c| c.0 == name) {
                Some((_, v)) => {
                    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                        return Err(ferr(format!("column `{name}`, index {i}: {} is not a finite number", v[i])));
                    }
                    v.clone()
                }
                None => match default {
                    Some(d) => vec![d; n],
                    None => return Err(ferr(format!("missing required column `{name}` (for the {} SFH)", family.name()))),
                },
            };
            columns.push((name.to_string(), col));
        }
        Ok(Self { file: file.into(), ids: None, columns, family })
    }

    /// The parameters of row `i` (0-based).
    pub fn params(&self, i: usize) -> GalaxyParams {
        let g = |n: &str| self.col(n).map(|c| c[i]).unwrap_or(f64::NAN);
        let age_gyr = g("age_gyr");
        let shape = match self.family {
            SfhFamily::DelayedTau => SfhShape::DelayedTau { age_gyr, tau_gyr: g("tau_gyr") },
            SfhFamily::Exponential => SfhShape::Exponential { age_gyr, tau_gyr: g("tau_gyr") },
            SfhFamily::Constant => SfhShape::Constant { age_gyr },
            SfhFamily::Burst | SfhFamily::Tabulated => SfhShape::Burst { age_gyr },
        };
        GalaxyParams {
            redshift: g("redshift"),
            sfh: SfhSpec::Parametric { shape, log_mass_formed: g("log_mass_formed") },
            logzsol: g("logzsol"),
            av_mag: g("av_mag"),
            eta: g("eta"),
            logu: g("logu"),
        }
    }
}

/// Header of the derived-quantity columns, in output order.
pub const DERIVED_COLUMNS: [&str; 4] = ["log_mstar", "log_sfr_10myr", "log_sfr_100myr", "mass_weighted_age_gyr"];

/// Runs the model on every row; returns per row the derived quantities and band fluxes (µJy).
/// The first failing row (in table order) is reported with its row number.
pub fn compute_rows(
    model: &SpsModel,
    table: &ParamTable,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<(sbipix_sps::Derived, Vec<f64>)>> {
    let n = table.n_rows();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::result::Result<(sbipix_sps::Derived, Vec<f64>), sbipix_sps::SpsError>> = (0..n)
        .into_par_iter()
        .map_init(Workspace::default, |ws, i| {
            let mut flux = vec![0.0; model.n_bands()];
            let r = model.photometry_into(&table.params(i), ws, &mut flux).map(|d| (d, flux));
            let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if k.is_multiple_of(256) || k == n {
                progress(k);
            }
            r
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(v) => out.push(v),
            Err(e) => {
                return Err(Error::Row { file: table.file.clone(), row: i + 1, line: 0, column: String::new(), reason: e.to_string() });
            }
        }
    }
    Ok(out)
}

/// Computes photometry for every row of `table` and writes `out` (CSV) atomically: the
/// parameter columns (with defaults filled in), the derived quantities and `flux_ujy_<BAND>`.
pub fn photometry_catalog(model: &SpsModel, table: &ParamTable, out: &Path, progress: &(dyn Fn(usize) + Sync)) -> Result<usize> {
    let rows = compute_rows(model, table, progress)?;
    let bands = model.band_names();
    sbipix_io::write_atomic(out, |w| {
        let mut wr = csv::Writer::from_writer(w);
        let mut header: Vec<String> = Vec::new();
        if table.ids.is_some() {
            header.push("id".into());
        }
        header.extend(table.columns.iter().map(|c| c.0.clone()));
        header.extend(DERIVED_COLUMNS.iter().map(|s| s.to_string()));
        header.extend(bands.iter().map(|b| format!("flux_ujy_{b}")));
        wr.write_record(&header)?;
        for (i, (d, flux)) in rows.iter().enumerate() {
            let mut rec: Vec<String> = Vec::with_capacity(header.len());
            if let Some(ids) = &table.ids {
                rec.push(ids[i].clone());
            }
            rec.extend(table.columns.iter().map(|c| c.1[i].to_string()));
            for v in [d.log_mstar, d.log_sfr_10myr, d.log_sfr_100myr, d.mass_weighted_age_gyr] {
                rec.push(fmt_g(v));
            }
            rec.extend(flux.iter().map(|f| fmt_g(*f)));
            wr.write_record(&rec)?;
        }
        wr.flush()?;
        Ok(())
    })?;
    Ok(rows.len())
}

/// Numbers with 10 significant digits (enough for 1e-9 relative), `-inf` for log10(0).
fn fmt_g(v: f64) -> String {
    if v.is_finite() { format!("{v:.10e}") } else { v.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_missing_and_bad_cells_name_their_place() {
        let e = ParamTable::parse_csv("redshift,log_mass_formed,age_gyr,tau_gyr,colour\n1,10,1,1,red\n", "in.csv", SfhFamily::DelayedTau)
            .unwrap_err()
            .to_string();
        assert!(e.contains("in.csv") && e.contains("unknown column `colour`"), "{e}");
        let e =
            ParamTable::parse_csv("redshift,log_mass_formed,age_gyr\n1,10,1\n", "in.csv", SfhFamily::DelayedTau).unwrap_err().to_string();
        assert!(e.contains("missing required column `tau_gyr`"), "{e}");
        let e = ParamTable::parse_csv("redshift,log_mass_formed,age_gyr,tau_gyr\n1,10,1,1\n1,x,1,1\n", "in.csv", SfhFamily::DelayedTau)
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 2 (line 3), column `log_mass_formed`") && e.contains("`x`"), "{e}");
        let e = ParamTable::parse_csv("redshift,log_mass_formed,age_gyr,tau_gyr\n1,nan,1,1\n", "in.csv", SfhFamily::DelayedTau)
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 1") && e.contains("finite"), "{e}");
        let e = ParamTable::parse_csv("redshift,log_mass_formed,age_gyr,tau_gyr\n1,10,1,1\n", "in.csv", SfhFamily::Constant)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`tau_gyr`") && e.contains("no τ"), "{e}");
        let e = ParamTable::parse_csv("redshift,log_mass_formed,age_gyr,tau_gyr\n1,10,1\n", "in.csv", SfhFamily::DelayedTau)
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 1"), "{e}");
    }

    #[test]
    fn defaults_fill_optional_columns() {
        let t = ParamTable::parse_csv(
            "# comment\nid,redshift,log_mass_formed,age_gyr,tau_gyr,av_mag\ng1,1,10,1,0.5,\ng2,2,9,0.5,0.1,1.2\n",
            "in.csv",
            SfhFamily::DelayedTau,
        )
        .unwrap();
        assert_eq!(t.n_rows(), 2);
        let p = t.params(0);
        assert_eq!((p.av_mag, p.logzsol, p.logu, p.eta), (0.0, 0.0, -2.0, 1.0));
        assert_eq!(t.params(1).av_mag, 1.2);
        assert_eq!(t.ids.as_ref().unwrap()[1], "g2");
        let c = |n: &str, v: Vec<f64>| (n.to_string(), v);
        let t = ParamTable::from_columns(
            vec![
                c("redshift", vec![1.0, 2.0]),
                c("log_mass_formed", vec![10.0, 9.0]),
                c("age_gyr", vec![1.0, 0.5]),
                c("tau_gyr", vec![0.5, 0.1]),
            ],
            "arrays",
            SfhFamily::DelayedTau,
        )
        .unwrap();
        let p = t.params(1);
        assert_eq!((p.redshift, p.av_mag, p.logu, p.eta), (2.0, 0.0, -2.0, 1.0));
        let e =
            ParamTable::from_columns(vec![c("redshift", vec![1.0]), c("log_mass_formed", vec![10.0, 9.0])], "arrays", SfhFamily::Constant)
                .unwrap_err()
                .to_string();
        assert!(e.contains("`log_mass_formed` has 2 values"), "{e}");
        let e = ParamTable::from_columns(
            vec![c("redshift", vec![1.0]), c("log_mass_formed", vec![f64::NAN]), c("age_gyr", vec![1.0])],
            "arrays",
            SfhFamily::Constant,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`log_mass_formed`, index 0"), "{e}");
        let e = ParamTable::from_columns(vec![c("redshift", vec![1.0]), c("age_gyr", vec![1.0])], "arrays", SfhFamily::Constant)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing required column `log_mass_formed`"), "{e}");
    }
}
