//! Wire formats shared by receivers and exporters.

pub mod compression;

pub use compression::{Compression, DecompressError};
