/// Errors of the data-generation library. `Invalid` names the offending parameter key so the
/// pipeline can map it back to a line of pipeline.yaml.
#[derive(Debug, thiserror::Error)]
pub enum DatagenError {
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("malformed artifact: {0}")]
    Artifact(String),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

impl DatagenError {
    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        DatagenError::Invalid {
            key: key.to_string(),
            message: message.into(),
        }
    }
    pub fn artifact(message: impl Into<String>) -> Self {
        DatagenError::Artifact(message.into())
    }
}
