//! Process startup: kong.conf, the declarative configuration, the listeners.

use std::process::ExitCode;

use crate::conf::KongConf;
use crate::declarative::{self, Config, LoadError};

/// Loads kong.conf (`conf`), the environment and the declarative files (`files`, else
/// `declarative_config` / `declarative_config_string`).
pub fn load(files: &[String], conf: Option<&str>) -> Result<(KongConf, Config), String> {
    let kong = KongConf::from_env_and_file(conf).map_err(|e| e.to_string())?;
    let result = if !files.is_empty() {
        declarative::load_files(files)
    } else if let Some(path) = &kong.declarative_config {
        declarative::load_files(&[path])
    } else if let Some(text) = &kong.declarative_config_string {
        declarative::load_str("declarative_config_string", text)
    } else {
        Ok(Config::default())
    };
    let config = result.map_err(|e| match e {
        LoadError::Invalid(errors) => {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            lines.join("\n")
        }
        other => other.to_string(),
    })?;
    Ok((kong, config))
}

/// Entry point of the binary.
pub fn main(files: Vec<String>, conf: Option<String>) -> ExitCode {
    match load(&files, conf.as_deref()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}
