//! Where the lake lives: a local directory (the default, `./data/lake`) or an S3 prefix
//! (`s3://bucket/prefix`) configured the usual AWS way (`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL` for S3-compatible servers).

use crate::LakeError;
use std::collections::HashMap;
use std::path::Path;
use url::Url;

/// AWS variables passed to the object store when the lake is on S3.
const AWS_VARIABLES: &[&str] = &[
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP",
    "AWS_S3_ALLOW_UNSAFE_RENAME",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
];

/// The lake's root and the storage options every table under it is opened with.
#[derive(Clone)]
pub struct LakeLocation {
    root: Url,
    options: HashMap<String, String>,
}

impl std::fmt::Debug for LakeLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Options may hold credentials: show their names only.
        f.debug_struct("LakeLocation")
            .field("root", &self.root.as_str())
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl LakeLocation {
    /// A path (created if missing) or an `s3://bucket/prefix` URL; S3 options come from the
    /// environment.
    pub fn parse(text: &str) -> Result<Self, LakeError> {
        Self::parse_with(text, std::env::vars())
    }

    /// Like [`parse`](Self::parse) with the environment given (tests pass their own).
    pub fn parse_with(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, LakeError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(LakeError::Location("the lake location is empty".into()));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let bucket = rest.split('/').next().unwrap_or_default();
            if bucket.is_empty() {
                return Err(LakeError::Location(format!(
                    "'{text}' names no bucket; expected s3://bucket/prefix"
                )));
            }
            let root = Url::parse(&format!("{}/", text.trim_end_matches('/')))
                .map_err(|e| LakeError::Location(format!("'{text}': {e}")))?;
            let mut options: HashMap<String, String> = env
                .into_iter()
                .filter(|(k, _)| AWS_VARIABLES.contains(&k.as_str()))
                .collect();
            if let Some(endpoint) = options.get("AWS_ENDPOINT_URL") {
                if endpoint.starts_with("http://") {
                    options
                        .entry("AWS_ALLOW_HTTP".into())
                        .or_insert_with(|| "true".into());
                }
            }
            return Ok(LakeLocation { root, options });
        }
        if text.contains("://") && !text.starts_with("file://") {
            return Err(LakeError::Location(format!(
                "'{text}': only local paths, file:// and s3:// are supported"
            )));
        }
        let path = Path::new(text.strip_prefix("file://").unwrap_or(text));
        std::fs::create_dir_all(path)
            .map_err(|e| LakeError::Location(format!("cannot create '{}': {e}", path.display())))?;
        let absolute = path.canonicalize()?;
        let root = Url::from_directory_path(&absolute).map_err(|()| {
            LakeError::Location(format!("'{}' is not a directory path", absolute.display()))
        })?;
        Ok(LakeLocation {
            root,
            options: HashMap::new(),
        })
    }

    /// The URL of table `name` under the root.
    pub fn table_url(&self, name: &str) -> Result<Url, LakeError> {
        self.root
            .join(&format!("{name}/"))
            .map_err(|e| LakeError::Location(format!("table {name}: {e}")))
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    pub fn is_local(&self) -> bool {
        self.root.scheme() == "file"
    }

    /// Adds an object-store option (e.g. `max_retries`, `retry_timeout`).
    pub fn with_option(mut self, key: &str, value: &str) -> Self {
        self.options.insert(key.to_string(), value.to_string());
        self
    }

    pub(crate) fn storage_options(&self) -> HashMap<String, String> {
        self.options.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations_take_aws_settings_from_the_environment() {
        let env = [
            (
                "AWS_ENDPOINT_URL".to_string(),
                "http://127.0.0.1:9000".to_string(),
            ),
            ("AWS_REGION".to_string(), "us-east-1".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let loc = LakeLocation::parse_with("s3://lake/prod", env).expect("parses");
        assert_eq!(
            loc.table_url("events").expect("url").as_str(),
            "s3://lake/prod/events/"
        );
        let options = loc.storage_options();
        assert_eq!(
            options.get("AWS_ALLOW_HTTP").map(String::as_str),
            Some("true")
        );
        assert!(!options.contains_key("HOME"));
        assert!(!loc.is_local());
    }

    #[test]
    fn bad_locations_say_what_is_wrong() {
        let no_bucket = LakeLocation::parse_with("s3:///x", []).expect_err("no bucket");
        assert!(
            no_bucket.to_string().contains("names no bucket"),
            "{no_bucket}"
        );
        let scheme = LakeLocation::parse_with("gs://b/p", []).expect_err("scheme");
        assert!(scheme.to_string().contains("only local paths"), "{scheme}");
        assert!(LakeLocation::parse_with("  ", []).is_err());
    }

    #[test]
    fn local_paths_are_created_and_made_absolute() {
        let dir = std::env::temp_dir().join(format!("bs-lake-loc-{}", uuid::Uuid::new_v4()));
        let loc = LakeLocation::parse(dir.join("lake").to_str().expect("utf-8")).expect("parses");
        assert!(loc.is_local());
        assert!(dir.join("lake").is_dir());
        assert!(loc
            .table_url("events")
            .expect("url")
            .as_str()
            .ends_with("/lake/events/"));
        std::fs::remove_dir_all(dir).ok();
    }
}
