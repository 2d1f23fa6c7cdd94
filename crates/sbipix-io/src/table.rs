//! Tables in: one reader for the catalogue formats users bring — CSV, whitespace-separated text
//! and FITS binary tables — returning cells as text for the caller to parse with its own column
//! rules.

use crate::error::{IoError, Result};
use std::path::Path;

/// A table of strings: header and rows (FITS numeric columns are formatted).
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Line number of each row in the file (0 for FITS).
    pub lines: Vec<usize>,
}

/// Reads a table: a FITS binary table (`.fits`, `.fit`, `.fits.gz`: the first table HDU), a CSV
/// file (the first non-comment line has a comma) or a whitespace-separated text table; `#` starts
/// a comment line. Every cell is kept as text, trimmed; FITS numbers are formatted (NaN as empty).
pub fn read_table(path: &Path) -> Result<Table> {
    let file = path.display().to_string();
    let ferr = |reason: String| IoError::Table { path: path.to_path_buf(), reason };
    let lower = file.to_ascii_lowercase();
    if lower.ends_with(".fits") || lower.ends_with(".fit") || lower.ends_with(".fits.gz") {
        return read_fits_table(path);
    }
    let text = std::fs::read_to_string(path).map_err(|e| IoError::io(path, e))?;
    // the first non-comment line decides: commas → CSV, else whitespace-separated
    let first =
        text.lines().find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).ok_or_else(|| ferr("empty table".into()))?;
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let header: Vec<String>;
    if first.contains(',') {
        let mut rdr = csv::ReaderBuilder::new().comment(Some(b'#')).trim(csv::Trim::All).flexible(false).from_reader(text.as_bytes());
        header = rdr.headers().map_err(|e| ferr(e.to_string()))?.iter().map(str::to_string).collect();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| IoError::Row {
                path: path.to_path_buf(),
                row: i + 1,
                line: e.position().map_or(0, |p| p.line() as usize),
                reason: e.to_string(),
            })?;
            lines.push(rec.position().map_or(0, |p| p.line() as usize));
            rows.push(rec.iter().map(str::to_string).collect());
        }
    } else {
        let mut it = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let (_, h) = it.next().expect("first line exists");
        header = h.split_whitespace().map(str::to_string).collect();
        for (k, (ln, l)) in it.enumerate() {
            let cells: Vec<String> = l.split_whitespace().map(str::to_string).collect();
            if cells.len() != header.len() {
                return Err(IoError::Row {
                    path: path.to_path_buf(),
                    row: k + 1,
                    line: ln + 1,
                    reason: format!("{} fields, the header has {}", cells.len(), header.len()),
                });
            }
            lines.push(ln + 1);
            rows.push(cells);
        }
    }
    if rows.is_empty() {
        return Err(ferr("the table has no data rows".into()));
    }
    Ok(Table { header, rows, lines })
}

fn read_fits_table(path: &Path) -> Result<Table> {
    use fitsio::hdu::HduInfo;
    let ferr = |reason: String| IoError::Table { path: path.to_path_buf(), reason };
    let mut f = crate::arrays::open_fits(path)?;
    let mut found = None;
    for i in 0..1000 {
        let Ok(h) = f.hdu(i) else { break };
        if let HduInfo::TableInfo { column_descriptions, num_rows } = &h.info {
            found = Some((i, column_descriptions.iter().map(|c| c.name.clone()).collect::<Vec<_>>(), *num_rows));
            break;
        }
    }
    let (i, header, n) = found.ok_or_else(|| ferr("no table HDU".into()))?;
    let h = f.hdu(i).map_err(|e| ferr(e.to_string()))?;
    let mut cols: Vec<Vec<String>> = Vec::new();
    for name in &header {
        let c: Vec<String> = match h.read_col::<f64>(&mut f, name) {
            Ok(v) => v.iter().map(|x| if x.is_nan() { String::new() } else { format!("{x:e}") }).collect(),
            Err(_) => h.read_col::<String>(&mut f, name).map_err(|e| ferr(format!("column `{name}`: {e}")))?,
        };
        cols.push(c);
    }
    let rows = (0..n).map(|r| cols.iter().map(|c| c[r].trim().to_string()).collect()).collect();
    Ok(Table { header, rows, lines: vec![0; n] })
}
