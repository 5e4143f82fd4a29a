//! Reading a file the exporter is pointed at: a regular file of bounded size, nothing else.

use std::path::Path;

/// The largest file the exporter reads: configuration files and PEM files are a few KiB, and
/// nothing larger is read into memory.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("is larger than {} MiB", MAX_FILE_BYTES >> 20)]
    TooLarge,
    #[error("is not UTF-8 text")]
    NotText,
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`], following symbolic links (a
/// Kubernetes ConfigMap's files are links). Anything else is refused before it is opened:
/// a FIFO would block the open, a device could be read without end.
///
/// # Errors
///
/// [`FileError`] saying what the file is, or the I/O error.
pub fn read_file(path: &Path) -> Result<Vec<u8>, FileError> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let check = |meta: std::fs::Metadata| {
        let t = meta.file_type();
        let what = if t.is_file() {
            if meta.len() > MAX_FILE_BYTES {
                return Err(FileError::TooLarge);
            }
            return Ok(());
        } else if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        Err(FileError::NotRegular(what))
    };
    check(std::fs::metadata(path)?)?;
    let file = std::fs::File::open(path)?;
    // Looked at again once open, in case the path was replaced in between (a FIFO put there
    // in that instant would still block the open: std has no O_NONBLOCK without libc).
    check(file.metadata()?)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::TooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::load;

    /// Every file is a regular file of at most 4 MiB, refused before it is read otherwise;
    /// a link to one (as in a Kubernetes ConfigMap) is fine.
    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = std::env::temp_dir().join(format!("sae-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let fifo = dir.join("fifo.yaml");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let big = dir.join("big.yaml");
        std::fs::write(&big, vec![b'#'; MAX_FILE_BYTES as usize + 1]).expect("write");
        let cases = [
            (dir.clone(), "is a directory, not a regular file"),
            (
                PathBuf::from("/dev/zero"),
                "is a character device, not a regular file",
            ),
            (fifo, "is a FIFO, not a regular file"),
            (big, "is larger than 4 MiB"),
        ];
        for (path, problem) in cases {
            let err = load(&path).expect_err("refused");
            assert_eq!(err.to_string(), format!("{}: {problem}", path.display()));
        }
        let fits = dir.join("fits.yaml");
        let mut text = b"region: us-east-1\n".to_vec();
        text.resize(MAX_FILE_BYTES as usize, b'#');
        std::fs::write(&fits, &text).expect("write");
        let link = dir.join("link.yaml");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&fits, &link).expect("symlink");
        assert_eq!(
            load(&link)
                .expect("a link to a regular file")
                .region
                .as_deref(),
            Some("us-east-1")
        );
        let binary = dir.join("binary.yaml");
        std::fs::write(&binary, [0xff, 0xfe]).expect("write");
        assert_eq!(
            load(&binary).expect_err("not text").to_string(),
            format!("{}: is not UTF-8 text", binary.display())
        );
    }
}
