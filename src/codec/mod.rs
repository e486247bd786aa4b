//! Wire formats shared by receivers and exporters.

pub mod compression;
pub mod json;

pub use compression::{Compression, DecompressError};

#[cfg(test)]
mod properties;
