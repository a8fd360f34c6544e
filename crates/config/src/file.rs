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

/// Largest config file read: a commented config is a few kilobytes; this bound keeps a wrong
/// `--config /dev/zero` from filling memory.
const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Characters of a source line shown under an error, around the column.
const EXCERPT_CHARS: usize = 120;
/// Characters of a message kept whole; a longer one (a long value quoted in it) is cut in the
/// middle.
const MESSAGE_CHARS: usize = 400;

impl Config {
    /// Loads `path`, or when `None`, the default path, falling back to the embedded default if no
    /// file exists there. An explicitly named file must exist.
    pub fn load(path: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
        let (path, explicit) = match path {
            Some(path) => (path, true),
            None => (Path::new(DEFAULT_CONFIG_PATH), false),
        };
        match read_bounded(path) {
            Ok(bytes) => Ok(LoadedConfig {
                config: Self::parse_bytes(&bytes, &path.display().to_string())?,
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

    /// Parses a config file's bytes, which must be UTF-8 text; `origin` names it in errors.
    pub fn parse_bytes(bytes: &[u8], origin: &str) -> Result<Self, ConfigError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::parse(text, origin),
            Err(error) => {
                // The text before the first bad byte is valid, so its lines and columns are.
                let offset = error.valid_up_to();
                let lossy = String::from_utf8_lossy(bytes);
                let byte = bytes.get(offset).copied().unwrap_or(0);
                Err(invalid(
                    &lossy,
                    origin,
                    offset,
                    &format!(
                        "byte 0x{byte:02X} (at byte offset {offset}) is not UTF-8: a config file is \
                         UTF-8 text"
                    ),
                ))
            }
        }
    }

    /// Parses config text; `origin` names it in errors (a path).
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        use serde::Deserialize as _;
        let fail = |offset: usize, message: &str| invalid(text, origin, offset, message);
        let document = toml::de::DeTable::parse(text)
            .map_err(|error| fail(error.span().map_or(0, |span| span.start), error.message()))?;
        if let Some((offset, message)) = non_finite_float(document.get_ref()) {
            return Err(fail(offset, &message));
        }
        Self::deserialize(toml::de::Deserializer::from(document.clone())).map_err(|error| {
            let (span, message) = failing_element(document.get_ref(), &error);
            let offset = match span {
                Some(span) => value_of_key_named(document.get_ref(), &span, &message)
                    .or_else(|| element_named(document.get_ref(), &span, &message))
                    .map_or(span.start, |value| value.start),
                None => 0,
            };
            fail(offset, &message)
        })
    }
}

/// Reads at most [`MAX_CONFIG_BYTES`] of `path`; a longer file is an error.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} kB: not a syhub-ntp config", MAX_CONFIG_BYTES >> 10),
        ));
    }
    Ok(bytes)
}

/// The first float that is not a number or is infinite, anywhere in the document: its offset and
/// what is wrong. No setting takes one, and a check that compares (`v < least`) lets NaN through.
fn non_finite_float(table: &toml::de::DeTable<'_>) -> Option<(usize, String)> {
    table.iter().find_map(|(key, value)| non_finite_in(value, key.get_ref()))
}

fn non_finite_in(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    key: &str,
) -> Option<(usize, String)> {
    use toml::de::DeValue;
    match value.get_ref() {
        DeValue::Float(float) if float.as_str().parse::<f64>().is_ok_and(|f| !f.is_finite()) => {
            Some((
                value.span().start,
                format!(
                    "{key} = {}: expected a finite number (nan and inf are not values any setting \
                     takes)",
                    float.as_str()
                ),
            ))
        }
        DeValue::Table(table) => non_finite_float(table),
        DeValue::Array(array) => array.iter().find_map(|item| non_finite_in(item, key)),
        _ => None,
    }
}

/// toml reports an element of an array of tables (`[[source]]`) refused by its own check at the
/// span of the whole array, which is the first element's header: the element that is wrong,
/// found by checking them one by one, says which. The error's span and message.
fn failing_element(
    root: &toml::de::DeTable<'_>,
    error: &toml::de::Error,
) -> (Option<std::ops::Range<usize>>, String) {
    type Span = std::ops::Range<usize>;
    fn check<T: serde::de::DeserializeOwned>(
        item: &toml::Spanned<toml::de::DeValue<'_>>,
    ) -> Result<(), (Span, String)> {
        T::deserialize(toml::de::ValueDeserializer::from(item.clone())).map(drop).map_err(|e| {
            // A table's own check comes back without a span: the table's it is.
            (e.span().unwrap_or(item.span()), e.message().to_owned())
        })
    }
    type Check = fn(&toml::Spanned<toml::de::DeValue<'_>>) -> Result<(), (Span, String)>;
    let arrays: [(&str, Check); 2] =
        [("source", check::<crate::SourceConfig>), ("broadcast", check::<crate::BroadcastConfig>)];
    let whole = (error.span(), error.message().to_owned());
    let Some(span) = error.span() else { return whole };
    for (name, check) in arrays {
        let array = root.iter().find(|(key, _)| key.get_ref() == name).map(|(_, value)| value);
        let Some(toml::de::DeValue::Array(items)) =
            array.filter(|value| value.span() == span).map(|value| value.get_ref())
        else {
            continue;
        };
        if let Some((span, message)) = items.iter().find_map(|item| check(item).err()) {
            return (Some(span), message);
        }
    }
    whole
}

/// Where the value of the key a validation message is about sits. A table's own check (minpoll
/// against maxpoll, a rate limit's fields) is reported by toml at the table's span; its messages
/// start with the key they are about (`minpoll = 200: expected ...`), so the key is looked up in
/// that table and the error moved to its value. `None` when the message names no key the table
/// has (`address is missing`): the table's header is the place then.
fn value_of_key_named(
    root: &toml::de::DeTable<'_>,
    span: &std::ops::Range<usize>,
    message: &str,
) -> Option<std::ops::Range<usize>> {
    let key: String =
        message.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    if key.is_empty() {
        return None;
    }
    find_in_tables(root, span, &key)
}

/// Searches every table spanning exactly `span` (deepest first) for `key`.
fn find_in_tables(
    table: &toml::de::DeTable<'_>,
    span: &std::ops::Range<usize>,
    key: &str,
) -> Option<std::ops::Range<usize>> {
    use toml::de::DeValue;
    let tables = table.iter().flat_map(|(_, value)| match value.get_ref() {
        DeValue::Table(inner) => vec![(value.span(), inner)],
        DeValue::Array(array) => array
            .iter()
            .filter_map(|item| match item.get_ref() {
                DeValue::Table(inner) => Some((item.span(), inner)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    });
    for (inner_span, inner) in tables {
        if let Some(found) = find_in_tables(inner, span, key) {
            return Some(found);
        }
        if inner_span == *span
            && let Some((_, value)) = inner.iter().find(|(name, _)| name.get_ref() == key)
        {
            return Some(value.span());
        }
    }
    None
}

/// Where the element of a list a validation message is about sits. A list's own check (no
/// address twice) and a value checked after it was read as a string (an access rule) are
/// reported by toml at the list's span; such messages start with the element they are about
/// (`10.0.0.1/8 has host bits set`, `"x": expected an address`), so the last element of that
/// list the message starts with is the place (the second of two equal ones).
fn element_named(
    root: &toml::de::DeTable<'_>,
    span: &std::ops::Range<usize>,
    message: &str,
) -> Option<std::ops::Range<usize>> {
    let array = find_array(root, span)?;
    array
        .iter()
        .rev()
        .find(|item| {
            item.get_ref().as_str().is_some_and(|text| {
                !text.is_empty()
                    && (message.starts_with(&format!("{text} "))
                        || message.starts_with(&format!("{text}:"))
                        || message.starts_with(&format!("{text:?}")))
            })
        })
        .map(|item| item.span())
}

/// The array spanning exactly `span`, anywhere in the document.
fn find_array<'a, 'i>(
    table: &'a toml::de::DeTable<'i>,
    span: &std::ops::Range<usize>,
) -> Option<&'a toml::de::DeArray<'i>> {
    use toml::de::DeValue;
    table.iter().find_map(|(_, value)| match value.get_ref() {
        DeValue::Array(array) if value.span() == *span => Some(array),
        DeValue::Array(array) => array.iter().find_map(|item| match item.get_ref() {
            DeValue::Table(inner) => find_array(inner, span),
            _ => None,
        }),
        DeValue::Table(inner) => find_array(inner, span),
        _ => None,
    })
}

/// A refusal of `text` at byte `offset`: file, line and column, the message (a long value quoted
/// in it shortened) and the line with a caret under the spot (a window of it, for a long line).
fn invalid(text: &str, origin: &str, offset: usize, message: &str) -> ConfigError {
    let (line, column, excerpt) = locate(text, offset);
    ConfigError::Invalid {
        origin: origin.to_owned(),
        line,
        column,
        message: shorten(message.trim_end(), MESSAGE_CHARS),
        excerpt,
    }
}

/// `text` whole when it has at most `limit` characters, else its start and end around an
/// ellipsis.
fn shorten(text: &str, limit: usize) -> String {
    let count = text.chars().count();
    if count <= limit {
        return text.to_owned();
    }
    let head: String = text.chars().take(limit * 2 / 3).collect();
    let tail: String = text.chars().skip(count - limit / 3).collect();
    format!("{head}…{tail}")
}

/// 1-based line and column of byte `offset` in `text`, and the line itself with a caret under it:
/// at most [`EXCERPT_CHARS`] characters of it around the column, with control characters shown
/// as `?` so a hostile file cannot drive the terminal.
fn locate(text: &str, offset: usize) -> (usize, usize, String) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[..offset].matches('\n').count() + 1;
    let column = text[line_start..offset].chars().count() + 1;
    let source_line = &text[line_start..line_end];
    let length = source_line.chars().count();
    let first =
        (column - 1).saturating_sub(EXCERPT_CHARS / 2).min(length.saturating_sub(EXCERPT_CHARS));
    let shown: String = source_line
        .chars()
        .skip(first)
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect();
    let before = if first > 0 { "…" } else { "" };
    let after = if first + EXCERPT_CHARS < length { "…" } else { "" };
    // Under a tab, a tab, so the caret lines up as the terminal shows the line.
    let pad: String = before
        .chars()
        .chain(shown.chars().take(column - 1 - first))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let excerpt = format!("  | {before}{shown}{after}\n  | {pad}^");
    (line, column, excerpt)
}
