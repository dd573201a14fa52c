//! Configuration errors: each names the file, line and column, the key path,
//! what is wrong and what would be valid. They are collected, not thrown, so a
//! user sees every problem of a file in one run.

use std::fmt;
use std::path::PathBuf;

/// One problem in a configuration file or a file it refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in (as the user named it).
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// Key path such as `transforms[2].source`; empty for the whole file.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// What to do instead, with an example where one helps.
    pub help: Option<String>,
}

impl ConfigError {
    pub fn new(file: impl Into<PathBuf>, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { file: file.into(), position: None, key: key.into(), message: message.into(), help: None }
    }

    pub fn at(mut self, position: Option<(usize, usize)>) -> Self {
        self.position = position;
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)?;
        } else {
            write!(f, ": `{}`: {}", self.key, self.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found, in file order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn push(&mut self, error: ConfigError) {
        self.0.push(error);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was collected.
    pub fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() { Ok(value) } else { Err(self) }
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {error}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n{} configuration errors", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
