//! # sbipix-io — files for sbipix
//!
//! Model data (download with pip, checksum, conversion, cache), filter curves, CSV tables and
//! atomic writes. Knows nothing of inference.

pub mod arrays;
pub mod atomic;
pub mod data;
pub mod error;
pub mod filters;

pub use atomic::write_atomic;
pub use data::{DataStore, JADES_SEDPY_FILTERS};
pub use error::{IoError, Result};
pub use filters::{read_filter_file, read_filter_list};
