//! Files in and out: bounded reads of JSON inputs (snapshots, config dumps;
//! `-` is standard input) and the atomic, early-checked `--save-snapshot`.
//!
//! Reads are streamed through a reader that stops at a size cap, so
//! `--snapshot /dev/zero` ends at once (not JSON) and an endless valid-looking
//! stream ends at the cap, with an error either way and never unbounded
//! memory. A regular file over the cap is refused from its size alone.
//!
//! Saving writes to a temporary file in the target directory, syncs it and
//! renames it over the target: a failure (full disk, killed process) leaves
//! the previous file intact, never a truncated one. The directory is checked
//! (exists, accepts new files) before any collection starts.

use std::cell::Cell;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde_json::Value;

/// Largest snapshot or config-dump input accepted.
pub const MAX_INPUT_BYTES: u64 = 512 * 1024 * 1024;

/// A file named on the command line, or standard input (`-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputFile {
    Path(PathBuf),
    Stdin,
}

impl InputFile {
    pub fn from_arg(p: &Path) -> InputFile {
        if p.as_os_str() == "-" {
            InputFile::Stdin
        } else {
            InputFile::Path(p.to_path_buf())
        }
    }

    /// For messages: the path, or `standard input`.
    pub fn name(&self) -> String {
        match self {
            InputFile::Path(p) => p.display().to_string(),
            InputFile::Stdin => "(standard input)".to_string(),
        }
    }
}

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[source] std::io::Error),
    #[error("larger than {} MiB", .limit / (1024 * 1024))]
    TooLarge { limit: u64 },
    #[error("not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// A reader that refuses to go past `remaining` bytes and says so.
struct Capped<R> {
    inner: R,
    remaining: u64,
    hit: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 {
            // One more byte means the input is over the cap.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.hit.set(true);
                    Err(std::io::Error::other("input over the size cap"))
                }
            };
        }
        let max = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..max])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A JSON document type [`read_json_as`] can read: from a file's bytes in
/// memory, or streamed from a reader.
pub trait JsonDocument: Sized {
    fn from_slice(bytes: &[u8]) -> serde_json::Result<Self>;
    fn from_reader<R: Read>(r: R) -> serde_json::Result<Self>;
}

impl JsonDocument for Value {
    fn from_slice(bytes: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(bytes)
    }
    fn from_reader<R: Read>(r: R) -> serde_json::Result<Self> {
        serde_json::from_reader(r)
    }
}

/// Reads one JSON document of at most `limit` bytes from `input`, streamed.
pub fn read_json(input: &InputFile, limit: u64) -> Result<Value, ReadError> {
    let (f, _) = open(input, limit)?;
    match f {
        None => parse_capped(std::io::stdin().lock(), limit),
        Some(f) => parse_capped(f, limit),
    }
}

/// Reads one JSON document of at most `limit` bytes from `input` as a `T`:
/// a regular file into memory at once (its size is known and capped) and
/// parsed from there, which serde_json does faster than from a reader;
/// standard input, pipes and devices streamed through the capped reader,
/// so `/dev/zero` fails at its first byte and an endless stream at the cap.
pub fn read_json_as<T: JsonDocument>(input: &InputFile, limit: u64) -> Result<T, ReadError> {
    match open(input, limit)? {
        (None, _) => parse_capped(std::io::stdin().lock(), limit),
        (Some(f), Some(len)) => {
            let bytes = read_regular(f, len, limit).map_err(ReadError::Io)?;
            if bytes.len() as u64 > limit {
                return Err(ReadError::TooLarge { limit });
            }
            T::from_slice(&bytes).map_err(ReadError::Json)
        }
        (Some(f), None) => parse_capped(f, limit),
    }
}

/// A regular file this large is read in two halves at once.
const READ_IN_HALVES_FROM: u64 = 16 << 20;

/// The whole of a regular file of `len` bytes (its size when opened), and
/// at most `limit + 1` bytes if it grew since. A large file is read by two
/// threads, each half into its own half of the buffer: the kernel's copy
/// and the page faults of a 200 MB buffer were a third of `tls-check`'s
/// time on such a dump, and they take two cores as well as one.
fn read_regular(f: std::fs::File, len: u64, limit: u64) -> std::io::Result<Vec<u8>> {
    read_regular_from(f, len, limit, READ_IN_HALVES_FROM)
}

fn read_regular_from(
    mut f: std::fs::File,
    len: u64,
    limit: u64,
    halves_from: u64,
) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    #[cfg(unix)]
    if len >= halves_from {
        if let Some(halves) = read_halves(&f, len)? {
            bytes = halves;
        }
    }
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(bytes.len() as u64))?;
    // Straight from the file (no zeroed buffer in between); the cap holds
    // however much the file grew.
    let rest = limit.saturating_add(1).saturating_sub(bytes.len() as u64);
    bytes.reserve(
        usize::try_from(len)
            .unwrap_or(0)
            .saturating_sub(bytes.len()),
    );
    f.take(rest).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The first `len` bytes of `f`, each half read by its own thread; `None`
/// when the file is shorter now (it is then read from the start again).
#[cfg(unix)]
fn read_halves(f: &std::fs::File, len: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::os::unix::fs::FileExt;
    let Ok(n) = usize::try_from(len) else {
        return Ok(None);
    };
    // Zeroed by the system as it maps the pages: no pass over the buffer.
    let mut bytes = vec![0u8; n];
    let (first, second) = bytes.split_at_mut(n / 2);
    let at = first.len() as u64;
    let read = std::thread::scope(|s| {
        let other = s.spawn(|| f.read_exact_at(second, at));
        let mine = f.read_exact_at(first, 0);
        let theirs = other
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("reader thread failed")));
        mine.and(theirs)
    });
    match read {
        Ok(()) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// The file to read (`None`: standard input) and, for a regular file, its
/// size; a directory or a regular file over the cap is refused here.
fn open(input: &InputFile, limit: u64) -> Result<(Option<std::fs::File>, Option<u64>), ReadError> {
    match input {
        InputFile::Stdin => Ok((None, None)),
        InputFile::Path(p) => {
            let f = std::fs::File::open(p).map_err(ReadError::Io)?;
            let meta = f.metadata().map_err(ReadError::Io)?;
            if meta.is_dir() {
                return Err(ReadError::Io(std::io::Error::other("is a directory")));
            }
            if meta.is_file() && meta.len() > limit {
                return Err(ReadError::TooLarge { limit });
            }
            Ok((Some(f), meta.is_file().then_some(meta.len())))
        }
    }
}

fn parse_capped<T: JsonDocument>(r: impl Read, limit: u64) -> Result<T, ReadError> {
    let hit = Rc::new(Cell::new(false));
    let capped = Capped {
        inner: r,
        remaining: limit,
        hit: hit.clone(),
    };
    let reader = std::io::BufReader::with_capacity(1 << 20, capped);
    T::from_reader(reader).map_err(|e| {
        if hit.get() {
            ReadError::TooLarge { limit }
        } else if e.is_io() {
            ReadError::Io(std::io::Error::other(e.to_string()))
        } else {
            ReadError::Json(e)
        }
    })
}

/// A `--save-snapshot` destination that was checked before collecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavePath {
    path: PathBuf,
    dir: PathBuf,
}

impl SavePath {
    /// Checks that `path` can be written: not standard output, not a
    /// directory or a special file, in an existing directory that accepts a
    /// new file (tried with a temporary file, removed at once).
    pub fn check(path: &Path) -> Result<SavePath, String> {
        if path.as_os_str() == "-" {
            return Err("standard output carries the report; give a file name".into());
        }
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.is_dir() {
                return Err("is a directory; give a file name inside it".into());
            }
            if !meta.is_file() {
                return Err("exists and is not a regular file".into());
            }
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(format!("directory {} does not exist", dir.display()));
        }
        tempfile::Builder::new()
            .prefix(".mesh503-check-")
            .tempfile_in(&dir)
            .map_err(|e| format!("cannot create files in {}: {e}", dir.display()))?;
        Ok(SavePath {
            path: path.to_path_buf(),
            dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` to a temporary file next to the target, syncs it, and
    /// renames it over the target. On error the target is untouched.
    pub fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".mesh503-snapshot-")
            .tempfile_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// A `--fix-out` directory that was checked before collecting: it exists
/// and accepts new files. Each file is written atomically (a temporary file
/// in the directory, synced, renamed over the target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutDir {
    dir: PathBuf,
}

impl OutDir {
    pub fn check(dir: &Path) -> Result<OutDir, String> {
        if dir.as_os_str() == "-" {
            return Err("standard output carries the report; give a directory".into());
        }
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err("is not a directory".into()),
            Err(_) => return Err("directory does not exist (create it first)".into()),
        }
        tempfile::Builder::new()
            .prefix(".mesh503-check-")
            .tempfile_in(dir)
            .map_err(|e| format!("cannot create files in {}: {e}", dir.display()))?;
        Ok(OutDir {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `bytes` to `name` in the directory, atomically. Characters a
    /// Kubernetes name cannot hold are replaced, so the file stays inside.
    pub fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let safe = safe.trim_start_matches('.').to_string();
        let target = self
            .dir
            .join(if safe.is_empty() { "fix.yaml" } else { &safe });
        let mut tmp = tempfile::Builder::new()
            .prefix(".mesh503-fix-")
            .tempfile_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&target).map_err(|e| e.error)?;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_cap_stops_the_read() {
        let big = format!("[{}0]", "0,".repeat(1000));
        let e = parse_capped::<Value>(big.as_bytes(), 100).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { limit: 100 }), "{e}");
        assert!(parse_capped::<Value>(big.as_bytes(), big.len() as u64).is_ok());
        // An endless stream of zeros is refused at the first byte.
        let zeros = std::io::repeat(0).take(u64::MAX);
        assert!(matches!(
            parse_capped::<Value>(zeros, 1 << 30),
            Err(ReadError::Json(_))
        ));
        // An endless stream of whitespace ends at the cap.
        let spaces = std::io::repeat(b' ').take(u64::MAX);
        assert!(matches!(
            parse_capped::<Value>(spaces, 1 << 20),
            Err(ReadError::TooLarge { .. })
        ));
    }

    #[test]
    fn regular_files_over_the_cap_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.json");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(2000).unwrap();
        let e = read_json(&InputFile::Path(p), 1000).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { .. }), "{e}");
        let e = read_json(&InputFile::Path(dir.path().to_path_buf()), 1000).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
    }

    /// Read in halves or at once, a file is read whole; one that grew
    /// since its size was taken is read to the cap (+1, so the caller
    /// refuses it), one that shrank is read again from the start.
    #[test]
    fn regular_files_are_read_whole_in_halves_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dump.json");
        let text: Vec<u8> = (0..5001u32).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(&p, &text).unwrap();
        let open = || std::fs::File::open(&p).unwrap();
        for halves_from in [0, u64::MAX] {
            assert_eq!(
                read_regular_from(open(), 5001, 1 << 20, halves_from).unwrap(),
                text
            );
            // Grew from 3000 bytes: at most limit + 1.
            let grown = read_regular_from(open(), 3000, 4000, halves_from).unwrap();
            assert_eq!(grown, text[..4001]);
            // Shrank from 6000 bytes.
            assert_eq!(
                read_regular_from(open(), 6000, 1 << 20, halves_from).unwrap(),
                text
            );
        }
        let e = read_json_as::<Value>(&InputFile::Path(p.clone()), 1 << 20).unwrap_err();
        assert!(matches!(e, ReadError::Json(_)), "{e}");
        std::fs::write(&p, br#"{"configs": []}"#).unwrap();
        let v: Value = read_json_as(&InputFile::Path(p), 1 << 20).unwrap();
        assert_eq!(v["configs"], serde_json::json!([]));
    }

    #[test]
    fn dev_zero_ends_quickly() {
        if Path::new("/dev/zero").exists() {
            let e = read_json(&InputFile::Path("/dev/zero".into()), MAX_INPUT_BYTES).unwrap_err();
            assert!(matches!(e, ReadError::Json(_)), "{e}");
        }
    }

    #[test]
    fn save_is_atomic_and_checked_early() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("snap.json");
        std::fs::write(&p, "previous good file").unwrap();
        let sp = SavePath::check(&p).unwrap();
        sp.write(b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        // Nothing else is left in the directory (no temp files).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        // The directory vanished after the check: the write fails, and
        // nothing is created in place of the target.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let q = sub.join("snap.json");
        let sq = SavePath::check(&q).unwrap();
        std::fs::remove_dir(&sub).unwrap();
        assert!(sq.write(b"x").is_err());
        assert!(!q.exists());

        assert!(SavePath::check(Path::new("-")).is_err());
        assert!(SavePath::check(dir.path())
            .unwrap_err()
            .contains("directory"));
        assert!(SavePath::check(&dir.path().join("nope/x.json"))
            .unwrap_err()
            .contains("does not exist"));
        if Path::new("/dev/null").exists() {
            assert!(SavePath::check(Path::new("/dev/null")).is_err());
        }
    }

    #[test]
    fn fix_out_directory_is_checked_and_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::check(dir.path()).unwrap();
        let p = out
            .write("destinationrule-foo-httpbin.yaml", b"kind: x\n")
            .unwrap();
        assert_eq!(p, dir.path().join("destinationrule-foo-httpbin.yaml"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "kind: x\n");
        let odd = out.write("../../etc/passwd", b"y").unwrap();
        assert_eq!(
            odd.parent(),
            Some(dir.path()),
            "names stay inside the directory"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        assert!(OutDir::check(&dir.path().join("nope"))
            .unwrap_err()
            .contains("does not exist"));
        assert!(OutDir::check(&p).unwrap_err().contains("not a directory"));
        assert!(OutDir::check(Path::new("-")).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn unwritable_directory_is_found_before_collecting() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let r = SavePath::check(&ro.join("snap.json"));
        // root ignores directory permissions; only assert where they apply.
        let can_write = tempfile::tempfile_in(&ro).is_ok();
        assert_eq!(r.is_ok(), can_write, "{r:?}");
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
