//! Extensions: components outside the pipelines (health checks, storage, auth).

pub mod auth;
pub mod basicauth;
pub mod bearertokenauth;
pub mod file_storage;
pub mod headers_setter;
pub mod health_check;
pub mod storage;
