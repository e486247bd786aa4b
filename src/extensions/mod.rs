//! Extensions: components outside the pipelines (health checks, storage, auth).

pub mod auth;
pub mod basicauth;
pub mod bearertokenauth;
pub mod file_storage;
pub mod health_check;
pub mod storage;
