//! `PluginError`: why a plugin call failed, classified the way the host
//! reports it (the WIT `plugin-error` variant).

use std::fmt;

/// Why a call failed. The host turns it into a step error that names the step
/// and the plugin, so the message should say what is wrong and where (the
/// config key, the source line, the column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The step's `config` map is not acceptable (unknown key, bad value, a
    /// column the input does not have).
    InvalidConfig(String),
    /// The data handed in cannot be processed (malformed file, wrong schema).
    InvalidInput(String),
    /// Anything else: a bug in the plugin or a broken contract.
    Internal(String),
}

impl PluginError {
    /// A [`PluginError::InvalidConfig`] with `message`.
    pub fn config(message: impl Into<String>) -> Self {
        Self::InvalidConfig(message.into())
    }

    /// A [`PluginError::InvalidInput`] with `message`.
    pub fn input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// A [`PluginError::Internal`] with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// The message without its classification.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidConfig(m) | Self::InvalidInput(m) | Self::Internal(m) => m,
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::InvalidConfig(_) => "invalid config",
            Self::InvalidInput(_) => "invalid input",
            Self::Internal(_) => "internal error",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for PluginError {}

/// Arrow errors are plugin bugs unless the plugin says otherwise (`map_err`).
impl From<arrow_schema::ArrowError> for PluginError {
    fn from(err: arrow_schema::ArrowError) -> Self {
        Self::Internal(format!("Arrow: {err}"))
    }
}

impl From<PluginError> for crate::__private::common::floe::plugin::types::PluginError {
    fn from(err: PluginError) -> Self {
        match err {
            PluginError::InvalidConfig(m) => Self::InvalidConfig(m),
            PluginError::InvalidInput(m) => Self::InvalidInput(m),
            PluginError::Internal(m) => Self::Internal(m),
        }
    }
}
