//! What users take away: maps of a galaxy ([`map`], written by [`map_fits`], drawn by [`plots`]),
//! catalogue fits of integrated photometry ([`catalog_fit`]), photometry catalogues from parameter
//! tables ([`photometry`]), surveys of many galaxies ([`population`]) and synthetic galaxies with
//! known truth ([`synthetic`]).

pub mod catalog_fit;
pub mod map;
pub mod map_fits;
pub mod photometry;
pub mod plots;
pub mod population;
pub mod provenance;
pub mod summaries;
pub mod synthetic;

/// The status of a galaxy or catalogue row that was fitted; any other status text is the reason
/// it was not.
pub const STATUS_OK: &str = "ok";
