//! Errors the CLI maps to exit codes: config and usage errors exit 2 and name the file, line,
//! key, the bad value and what is allowed.

use std::fmt;
use std::path::PathBuf;

/// One problem in pipeline.yaml (or on the command line), located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column; `None` when the problem is not tied to a line (e.g. `--profile`).
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the offending key, e.g. `stages.train.params.lr`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

/// Everything wrong with a config, reported together so one edit-run cycle fixes them all.
#[derive(Debug, Clone, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// How a command ended, mapped to the process exit code by `main`.
#[derive(Debug)]
pub enum CliError {
    /// Bad pipeline.yaml or bad command-line usage: exit 2.
    Config(ConfigErrors),
    Usage(String),
    /// `--no-wait` and another runner holds the lock: exit 3.
    LockBusy(String),
    /// Some tasks failed (already reported): exit 1.
    TasksFailed(usize),
    /// `icl diff` found a difference (already printed): exit 1.
    Different,
    /// Ctrl-C / SIGTERM: exit 130.
    Interrupted,
    /// Anything else (I/O, a corrupt store): exit 1.
    Other(anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) | CliError::Usage(_) => 2,
            CliError::LockBusy(_) => 3,
            CliError::TasksFailed(_) | CliError::Different | CliError::Other(_) => 1,
            CliError::Interrupted => 130,
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Other(e)
    }
}

impl From<ConfigErrors> for CliError {
    fn from(e: ConfigErrors) -> Self {
        CliError::Config(e)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Config(e) => write!(f, "{e}"),
            CliError::Usage(m) => write!(f, "error: {m}"),
            CliError::LockBusy(m) => write!(f, "error: {m}"),
            CliError::TasksFailed(n) => write!(f, "error: {n} task(s) failed"),
            CliError::Different => write!(f, "artifacts differ"),
            CliError::Interrupted => write!(f, "interrupted"),
            CliError::Other(e) => write!(f, "error: {e:#}"),
        }
    }
}
