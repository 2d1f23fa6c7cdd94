//! Writing files so that a reader never sees a half-written one: write a temporary file in
//! the destination's folder, then rename it over the destination.

use crate::error::{IoError, Result};
use std::io::Write;
use std::path::Path;

/// Writes `path` atomically with the bytes produced by `write`. On error nothing is left behind.
pub fn write_atomic<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>,
{
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(IoError::io(&dir, std::io::Error::new(std::io::ErrorKind::NotFound, "output folder does not exist")));
    }
    let mut builder = tempfile::Builder::new();
    builder.prefix(".sbipix-tmp-");
    // tempfile creates 0600 files; outputs are for sharing (group folders on clusters), so ask
    // for 0666 and let the user's umask decide, as for any file the shell would create
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(&dir).map_err(|e| IoError::io(&dir, e))?;
    {
        let mut buf = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut buf).map_err(|e| IoError::Table { path: path.to_path_buf(), reason: e.to_string() })?;
        buf.flush().map_err(|e| IoError::io(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| IoError::io(path, e))?;
    tmp.persist(path).map_err(|e| IoError::io(path, e.error))?;
    Ok(())
}

/// Checks, before any long work, that the output `out` can be written: it must not exist unless
/// `overwrite`, and its folder must. Returns that folder.
pub fn check_output(out: &Path, overwrite: bool) -> Result<std::path::PathBuf> {
    if out.exists() && !overwrite {
        return Err(IoError::OutputExists { path: out.to_path_buf() });
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(IoError::OutputFolderMissing { path: out.to_path_buf(), folder: parent });
    }
    Ok(parent)
}

/// Writes the folder `out` atomically: `fill` writes into a temporary folder beside it, which
/// then replaces `out` (if `overwrite`; else an existing `out` is an error). On any error
/// nothing is left behind and `out` is untouched.
pub fn write_dir_atomic<E: From<IoError>>(
    out: &Path,
    overwrite: bool,
    fill: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let parent = check_output(out, overwrite)?;
    let tmp = tempfile::Builder::new().prefix(".sbipix-tmp-").tempdir_in(&parent).map_err(|e| IoError::io(&parent, e))?;
    fill(tmp.path())?;
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| IoError::io(out, e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, out).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        E::from(IoError::io(out, e))
    })
}

/// Writes the files `names` into the existing folder `out` as one set: `fill` writes them into a
/// temporary folder inside `out`; only when every one of them is written are they renamed into
/// place (in the order given, so put the file that marks completion last). On any error while
/// writing, nothing in `out` changes and nothing temporary is left behind; a name whose
/// destination is a folder is refused before anything is moved. Other files in `out` are kept.
pub fn write_files_atomic<E: From<IoError>>(
    out: &Path,
    names: &[&str],
    fill: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    std::fs::create_dir_all(out).map_err(|e| IoError::io(out, e))?;
    let staging = tempfile::Builder::new().prefix(".sbipix-tmp-").tempdir_in(out).map_err(|e| IoError::io(out, e))?;
    fill(staging.path())?;
    for name in names {
        if !staging.path().join(name).is_file() {
            let reason = format!("{name} was not written");
            return Err(IoError::io(out.join(name), std::io::Error::other(reason)).into());
        }
        let dest = out.join(name);
        if dest.is_dir() {
            let reason = "a folder of that name is in the way";
            return Err(IoError::io(dest, std::io::Error::new(std::io::ErrorKind::IsADirectory, reason)).into());
        }
    }
    for name in names {
        std::fs::rename(staging.path().join(name), out.join(name)).map_err(|e| IoError::io(out.join(name), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.csv");
        let r = write_atomic(&p, |w| {
            w.write_all(b"partial")?;
            Err("boom".into())
        });
        assert!(r.is_err());
        assert!(!p.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomic(&p, |w| Ok(w.write_all(b"ok")?)).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"ok");
        #[cfg(unix)]
        {
            // readable by others unless the umask says otherwise (tempfile's default is 0600)
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            let umask = {
                let out = std::process::Command::new("sh").args(["-c", "umask"]).output().unwrap();
                u32::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 8).unwrap()
            };
            assert_eq!(mode, 0o666 & !umask, "mode {mode:o}");
        }
    }
    #[test]
    fn a_set_of_files_is_placed_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        std::fs::write(out.join("a.txt"), b"old a").unwrap();
        std::fs::write(out.join("keep.txt"), b"other").unwrap();
        let listing = || {
            let mut v: Vec<String> =
                std::fs::read_dir(out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            v.sort();
            v
        };
        // the second file fails after the first was written: the old a.txt stays, no b.txt
        let r = write_files_atomic(out, &["a.txt", "b.txt"], |d| -> Result<()> {
            std::fs::write(d.join("a.txt"), b"new a").unwrap();
            Err(IoError::io(d.join("b.txt"), std::io::Error::other("disk full")))
        });
        assert!(r.is_err());
        assert_eq!(listing(), ["a.txt", "keep.txt"]);
        assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"old a");
        // a folder in the way of the last file: refused before the first is moved
        std::fs::create_dir(out.join("b.txt")).unwrap();
        let r = write_files_atomic(out, &["a.txt", "b.txt"], |d| -> Result<()> {
            std::fs::write(d.join("a.txt"), b"new a").unwrap();
            std::fs::write(d.join("b.txt"), b"new b").unwrap();
            Ok(())
        });
        assert!(r.unwrap_err().to_string().contains("b.txt"));
        assert_eq!(listing(), ["a.txt", "b.txt", "keep.txt"]);
        assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"old a");
        // a file promised but not written
        std::fs::remove_dir(out.join("b.txt")).unwrap();
        let r = write_files_atomic(out, &["a.txt", "b.txt"], |d| -> Result<()> {
            std::fs::write(d.join("a.txt"), b"new a").unwrap();
            Ok(())
        });
        assert!(r.unwrap_err().to_string().contains("b.txt was not written"));
        assert_eq!(listing(), ["a.txt", "keep.txt"]);
        // success: both replaced, the other file kept, nothing temporary left
        write_files_atomic(out, &["a.txt", "b.txt"], |d| -> Result<()> {
            std::fs::write(d.join("a.txt"), b"new a").unwrap();
            std::fs::write(d.join("b.txt"), b"new b").unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(listing(), ["a.txt", "b.txt", "keep.txt"]);
        assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"new a");
        assert_eq!(std::fs::read(out.join("b.txt")).unwrap(), b"new b");
    }
}
