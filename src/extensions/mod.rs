//! Extensions: components outside the pipelines (health checks, storage, auth).

pub mod health_check;
