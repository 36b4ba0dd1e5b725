//! Durable file writes for the Maildir store.
//!
//! A message is acknowledged only after its file is written and fsynced.
//! The store hands over every message of a group commit at once; this module
//! writes them and fsyncs them on a few threads of its own, so concurrent
//! fsyncs share the filesystem's journal commits, and the Python side pays
//! for one call (with the GIL released) instead of several system calls per
//! message, each of which would have to win the GIL back.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::thread;

/// Create `path` (it must not exist), write `data`, fsync, close.
///
/// On any failure the partly written file is removed, so nothing half
/// written is left behind in `tmp/`.
pub fn write_new(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let result = file.write_all(data).and_then(|()| file.sync_all());
    drop(file);
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

/// [`write_new`] for every `(path, data)` pair, on at most `threads` threads.
///
/// Results come back in the order of `items`. Up to `threads` fsyncs are in
/// flight at once; the kernel folds them into shared journal commits.
pub fn write_many<P: AsRef<Path> + Sync, D: AsRef<[u8]> + Sync>(
    items: &[(P, D)],
    threads: usize,
) -> Vec<io::Result<()>> {
    in_parallel(items, threads, |(path, data)| {
        write_new(path.as_ref(), data.as_ref())
    })
}

/// fsync each directory (after renames into it), on at most `threads` threads.
pub fn sync_dirs<P: AsRef<Path> + Sync>(dirs: &[P], threads: usize) -> Vec<io::Result<()>> {
    in_parallel(dirs, threads, |dir| {
        fs::File::open(dir.as_ref()).and_then(|d| d.sync_all())
    })
}

/// Rename each `(from, to)` in order (one thread: renames within one
/// filesystem are quick metadata updates, made durable by [`sync_dirs`]).
pub fn rename_many<P: AsRef<Path>, Q: AsRef<Path>>(pairs: &[(P, Q)]) -> Vec<io::Result<()>> {
    pairs
        .iter()
        .map(|(from, to)| fs::rename(from.as_ref(), to.as_ref()))
        .collect()
}

/// `op` on every item, split into at most `threads` runs of consecutive
/// items: the calling thread does the first, a thread of its own each of
/// the others; results in the order of `items`.
///
/// A run whose thread cannot be started (thread limit reached) is done by
/// the calling thread instead; a run whose thread panicked reports an error
/// for each of its items.
fn in_parallel<T: Sync>(
    items: &[T],
    threads: usize,
    op: impl Fn(&T) -> io::Result<()> + Sync,
) -> Vec<io::Result<()>> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(&op).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let op = &op;
    thread::scope(|scope| {
        let mut inline = Vec::new();
        let mut handles = Vec::new();
        for (index, part) in items.chunks(chunk).enumerate() {
            if index == 0 {
                // The calling thread takes the first run itself: one thread
                // fewer to start and to wake for every batch.
                inline.push((index, part));
                continue;
            }
            let spawned = thread::Builder::new()
                .spawn_scoped(scope, move || part.iter().map(op).collect::<Vec<_>>());
            match spawned {
                Ok(handle) => handles.push((index, part.len(), handle)),
                Err(_) => inline.push((index, part)),
            }
        }
        let mut parts: Vec<(usize, Vec<io::Result<()>>)> = inline
            .into_iter()
            .map(|(index, part)| (index, part.iter().map(op).collect()))
            .collect();
        for (index, len, handle) in handles {
            let results = handle.join().unwrap_or_else(|_| {
                (0..len)
                    .map(|_| Err(io::Error::other("durable-write thread panicked")))
                    .collect()
            });
            parts.push((index, results));
        }
        parts.sort_by_key(|(index, _)| *index);
        parts.into_iter().flat_map(|(_, results)| results).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mailcore-durable-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn renames_in_order_and_reports_each_failure() {
        let dir = scratch("rename");
        fs::write(dir.join("a"), b"one").expect("a");
        fs::write(dir.join("c"), b"three").expect("c");
        let pairs = [
            (dir.join("a"), dir.join("A")),
            (dir.join("missing"), dir.join("B")),
            (dir.join("c"), dir.join("C")),
        ];
        let results = rename_many(&pairs);
        assert!(results[0].is_ok() && results[2].is_ok());
        let err = results[1].as_ref().expect_err("no such file");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(fs::read(dir.join("A")).expect("A"), b"one");
        assert_eq!(fs::read(dir.join("C")).expect("C"), b"three");
        assert!(!dir.join("B").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn writes_every_file_in_order_of_results() {
        let dir = scratch("many");
        let items: Vec<(std::path::PathBuf, Vec<u8>)> = (0..37)
            .map(|i| {
                (
                    dir.join(format!("m{i}")),
                    vec![b'a' + (i % 26) as u8; i * 101],
                )
            })
            .collect();
        for threads in [1, 4, 64] {
            for (p, _) in &items {
                let _ = fs::remove_file(p);
            }
            let results = write_many(&items, threads);
            assert_eq!(results.len(), items.len());
            for ((path, data), r) in items.iter().zip(&results) {
                assert!(r.is_ok(), "{r:?}");
                assert_eq!(&fs::read(path).expect("read back"), data);
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_existing_file_is_an_error_and_stays_untouched() {
        let dir = scratch("exists");
        let taken = dir.join("taken");
        fs::write(&taken, b"keep me").expect("write");
        let items = vec![
            (dir.join("free"), b"new".to_vec()),
            (taken.clone(), b"clobber".to_vec()),
        ];
        let results = write_many(&items, 2);
        assert!(results[0].is_ok());
        let err = results[1].as_ref().expect_err("create_new must refuse");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&taken).expect("read"), b"keep me");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn directory_results_keep_their_order_across_threads() {
        let dir = scratch("dirs");
        let dirs: Vec<std::path::PathBuf> = (0..9)
            .map(|i| {
                let d = dir.join(format!("d{i}"));
                if i != 4 {
                    fs::create_dir(&d).expect("mkdir");
                }
                d
            })
            .collect();
        for threads in [1, 2, 3, 16] {
            let results = sync_dirs(&dirs, threads);
            let failed: Vec<usize> = (0..results.len())
                .filter(|&i| results[i].is_err())
                .collect();
            assert_eq!(failed, vec![4], "threads={threads}");
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_directory_is_not_found() {
        let dir = scratch("missing");
        let items = vec![(dir.join("nope").join("x"), b"x".to_vec())];
        let results = write_many(&items, 1);
        let err = results[0].as_ref().expect_err("no such directory");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(sync_dirs(std::slice::from_ref(&dir), 4)[0].is_ok());
        assert!(sync_dirs(&[dir.join("nope")], 1)[0].is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
