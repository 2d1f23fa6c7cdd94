//! Reading filter curves: two-column text files (wavelength in Å, throughput), `#` comments,
//! whitespace- or comma-separated — the format of the SBIPIX curves and of sedpy's `.par` files —
//! and lists naming one curve file per line.

use crate::error::{IoError, Result};
use sbipix_sps::{Filter, band_name_from_file_name};
use std::path::{Path, PathBuf};

/// Reads one filter curve; the band name is taken from the file name (`F090W`, …).
pub fn read_filter_file(path: &Path) -> Result<Filter> {
    let text = std::fs::read_to_string(path).map_err(|e| IoError::io(path, e))?;
    let name = band_name_from_file_name(&path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    parse_filter_text(&text, &name, path)
}

/// Parses the text of a filter curve file (`path` is only used in error messages).
pub fn parse_filter_text(text: &str, name: &str, path: &Path) -> Result<Filter> {
    let mut wave = Vec::new();
    let mut trans = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut cols = line.split(|c: char| c.is_whitespace() || c == ',').filter(|s| !s.is_empty());
        let err = |reason: String| IoError::Text { path: path.to_path_buf(), line: i + 1, reason };
        let (Some(a), Some(b)) = (cols.next(), cols.next()) else {
            return Err(err(format!("expected two columns (wavelength in Å, throughput), found `{line}`")));
        };
        let w: f64 = a.parse().map_err(|_| err(format!("wavelength `{a}` is not a number")))?;
        let t: f64 = b.parse().map_err(|_| err(format!("throughput `{b}` is not a number")))?;
        wave.push(w);
        trans.push(t);
    }
    if wave.is_empty() {
        return Err(IoError::Text { path: path.to_path_buf(), line: 0, reason: "no data lines in filter file".into() });
    }
    Filter::new(name, wave, trans).map_err(|e| IoError::Table { path: path.to_path_buf(), reason: e.to_string() })
}

/// Reads a filter list: one curve file per line, paths relative to the list's folder, `#`
/// comments and blank lines ignored (the format of SBIPIX's `filters_jades_no_wfc.dat`).
pub fn read_filter_list(list: &Path) -> Result<Vec<Filter>> {
    let text = std::fs::read_to_string(list).map_err(|e| IoError::io(list, e))?;
    let base = list.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let mut filters: Vec<Filter> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let path = base.join(line);
        if !path.is_file() {
            return Err(IoError::Text {
                path: list.to_path_buf(),
                line: i + 1,
                reason: format!("filter file {} does not exist", path.display()),
            });
        }
        let f = read_filter_file(&path)?;
        if let Some(prev) = filters.iter().find(|g| g.name == f.name) {
            return Err(IoError::Text {
                path: list.to_path_buf(),
                line: i + 1,
                reason: format!("band name {} appears twice (from {} and {})", f.name, prev.name, path.display()),
            });
        }
        filters.push(f);
    }
    if filters.is_empty() {
        return Err(IoError::Text { path: list.to_path_buf(), line: 0, reason: "the list names no filter files".into() });
    }
    Ok(filters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comments_and_commas() {
        let f = parse_filter_text("# hdr\n1000, 0\n1100 0.5 # mid\n\n1200\t1\n1300 0\n", "X", Path::new("x")).unwrap();
        assert_eq!(f.wave_aa, vec![1000.0, 1100.0, 1200.0, 1300.0]);
        assert_eq!(f.trans, vec![0.0, 0.5, 1.0, 0.0]);
    }

    #[test]
    fn malformed_files_name_the_line() {
        let e = parse_filter_text("1000 0.1\n1100 abc\n", "X", Path::new("f.dat")).unwrap_err().to_string();
        assert!(e.contains("f.dat, line 2") && e.contains("abc"), "{e}");
        let e = parse_filter_text("1000\n", "X", Path::new("f.dat")).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = parse_filter_text("# only comments\n", "X", Path::new("f.dat")).unwrap_err().to_string();
        assert!(e.contains("no data"), "{e}");
        let e = parse_filter_text("1000 1\n900 1\n", "X", Path::new("f.dat")).unwrap_err().to_string();
        assert!(e.contains("increase"), "{e}");
    }
}
