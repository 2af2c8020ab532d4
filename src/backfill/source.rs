//! Where export files come from: listing and reading, behind [`ObjectSource`]. The production
//! adapters are [`LocalDir`] here and [`super::s3::S3Source`].

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

/// Keys a listing call returns at most; S3's `ListObjectsV2` page size
/// (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html>).
pub(crate) const LIST_PAGE: usize = 1_000;

/// One object: its key (an S3 key, or a path for a local folder) and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
}

/// Listing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("cannot list {location}: {reason}")]
    List { location: String, reason: String },
    #[error("cannot read {key}: {reason}")]
    Read { key: String, reason: String },
}

/// A blocking reader over one object's bytes, fed as they arrive (never the whole object).
pub(crate) type ObjectReader = Box<dyn Read + Send>;

/// Lists and reads the objects under one root (an S3 prefix or a local folder).
#[async_trait]
pub trait ObjectSource: Send + Sync {
    /// Up to `LIST_PAGE` keys after `start_after`, in a stable order; empty at the end.
    async fn list_page(&self, start_after: Option<&str>) -> Result<Vec<ObjectMeta>, SourceError>;
    /// Opens one object for streaming reads.
    async fn open(&self, key: &str) -> Result<ObjectReader, SourceError>;
    /// How reports name an object, e.g. `s3://bucket/key`.
    fn display(&self, key: &str) -> String {
        key.to_owned()
    }
}

/// A local folder holding `.avro` files at any depth (Braze's layout or not).
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// Reads `.avro` files under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

#[async_trait]
impl ObjectSource for LocalDir {
    async fn list_page(&self, start_after: Option<&str>) -> Result<Vec<ObjectMeta>, SourceError> {
        let root = self.root.clone();
        let after = start_after.map(PathBuf::from);
        let walked = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&root, after.as_deref(), &mut out).map(|()| out)
        })
        .await;
        let location = self.root.display().to_string();
        match walked {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(error)) => Err(SourceError::List {
                location,
                reason: error.to_string(),
            }),
            Err(error) => Err(SourceError::List {
                location,
                reason: error.to_string(),
            }),
        }
    }

    async fn open(&self, key: &str) -> Result<ObjectReader, SourceError> {
        let file = File::open(key).map_err(|e| SourceError::Read {
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Box::new(BufReader::with_capacity(256 * 1024, file)))
    }
}

/// Depth-first, entries sorted by name, so keys come in `Path` order (component by component)
/// and `after` resumes exactly. Directories entirely at or before `after` are not opened.
fn walk(dir: &Path, after: Option<&Path>, out: &mut Vec<ObjectMeta>) -> std::io::Result<()> {
    let mut entries: Vec<(PathBuf, std::fs::FileType)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_type().ok().map(|t| (e.path(), t)))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, kind) in entries {
        if out.len() >= LIST_PAGE {
            return Ok(());
        }
        if kind.is_dir() {
            if after.is_some_and(|after| path.as_path() < after && !after.starts_with(&path)) {
                continue;
            }
            walk(&path, after, out)?;
        } else if path.extension().is_some_and(|e| e == "avro") && after.is_none_or(|after| path.as_path() > after) {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            out.push(ObjectMeta {
                key: path.to_string_lossy().into_owned(),
                size,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_tree_pages_in_order_and_resumes_after_a_key() {
        let root = std::env::temp_dir().join(format!("backfill-walk-{}", fastrand::u64(..)));
        for name in ["b/2.avro", "a/x/1.avro", "a/x/2.avro", "a-z.avro", "c.txt", "b/1.avro"] {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"x").unwrap();
        }
        let source = LocalDir::new(&root);
        let names = |page: Vec<ObjectMeta>| -> Vec<String> {
            page.into_iter()
                .map(|m| m.key.strip_prefix(&*root.to_string_lossy()).unwrap().to_owned())
                .collect()
        };
        let all = names(source.list_page(None).await.unwrap());
        assert_eq!(
            all,
            ["/a/x/1.avro", "/a/x/2.avro", "/a-z.avro", "/b/1.avro", "/b/2.avro"]
        );
        let after = root.join("a/x/2.avro").to_string_lossy().into_owned();
        let rest = names(source.list_page(Some(&after)).await.unwrap());
        assert_eq!(rest, ["/a-z.avro", "/b/1.avro", "/b/2.avro"]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
