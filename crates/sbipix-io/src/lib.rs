//! # sbipix-io — files for sbipix
//!
//! Model data (download with pip, checksum, conversion, cache), filter curves, images of galaxies
//! (FITS cubes and per-band files, units, WCS, segmentation), CSV tables and atomic writes. Knows nothing of inference.

pub mod arrays;
pub mod atomic;
pub mod data;
pub mod error;
pub mod filters;
mod grids_file;
pub mod images;
pub mod table;

pub use atomic::{check_output, write_atomic, write_dir_atomic, write_files_atomic};
pub use data::{DataStore, JADES_SEDPY_FILTERS};
pub use error::{IoError, Result};
pub use filters::{read_filter_file, read_filter_list};
pub use images::{ImageSet, read_segmentation, unit_factor};
pub use table::{Table, read_table};
