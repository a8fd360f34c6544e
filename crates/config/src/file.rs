//! Finding, reading and parsing the config file; the embedded default used when there is none.

use super::Config;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the daemon looks for its config when no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/syhub-ntp/config.toml";

/// The embedded default config, with a comment on every key (`syhub-ntp config default`).
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default.toml");

/// Where the config in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    /// No file at the default path: the embedded default.
    Embedded,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Embedded => {
                write!(f, "the embedded default ({DEFAULT_CONFIG_PATH} does not exist)")
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub source: ConfigSource,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{origin}:{line}:{column}: {message}\n{excerpt}")]
    Invalid { origin: String, line: usize, column: usize, message: String, excerpt: String },
}

impl Config {
    /// Loads `path`, or when `None`, the default path, falling back to the embedded default if no
    /// file exists there. An explicitly named file must exist.
    pub fn load(path: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
        let (path, explicit) = match path {
            Some(path) => (path, true),
            None => (Path::new(DEFAULT_CONFIG_PATH), false),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(LoadedConfig {
                config: Self::parse(&text, &path.display().to_string())?,
                source: ConfigSource::File(path.to_owned()),
            }),
            Err(error) if !explicit && error.kind() == std::io::ErrorKind::NotFound => {
                Ok(LoadedConfig {
                    config: Self::embedded_default(),
                    source: ConfigSource::Embedded,
                })
            }
            Err(source) => Err(ConfigError::Read { path: path.to_owned(), source }),
        }
    }

    /// The embedded default config.
    pub fn embedded_default() -> Self {
        // The embedded text is checked against `Config::default()` by a unit test.
        Self::parse(DEFAULT_CONFIG_TOML, "embedded default").unwrap_or_default()
    }

    /// Parses config text; `origin` names it in errors (a path).
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|error| {
            let offset = error.span().map_or(0, |span| span.start);
            let (line, column, excerpt) = locate(text, offset);
            ConfigError::Invalid {
                origin: origin.to_owned(),
                line,
                column,
                message: error.message().trim_end().to_owned(),
                excerpt,
            }
        })
    }
}

/// 1-based line and column of byte `offset` in `text`, and the line itself with a caret under it.
fn locate(text: &str, offset: usize) -> (usize, usize, String) {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[..offset].matches('\n').count() + 1;
    let column = text[line_start..offset].chars().count() + 1;
    let source_line = &text[line_start..line_end];
    let excerpt = format!("  | {source_line}\n  | {}^", " ".repeat(column - 1));
    (line, column, excerpt)
}
