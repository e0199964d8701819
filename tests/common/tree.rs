#![allow(dead_code)]

//! Source trees with every fidelity case, and a comparison of two trees byte for byte and
//! metadata for metadata.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

/// Deterministic bytes that do not compress.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A tree with every case restore must reproduce: regular files of several sizes, an empty
/// file, an empty and nested directories, symlinks (one dangling), modes, a name that is not
/// UTF-8, and a sparse file over 4 GiB.
pub fn fidelity_tree(root: &Path) {
    fs::create_dir_all(root.join("dir/nested/deeper")).unwrap();
    fs::create_dir_all(root.join("empty_dir")).unwrap();
    fs::write(root.join("small.txt"), b"hello backstop\n").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("dir/text.log"), "line of text\n".repeat(20_000)).unwrap();
    fs::write(root.join("dir/nested/random.bin"), noise(1, 3 << 20)).unwrap();
    fs::write(root.join("dir/nested/deeper/leaf"), b"leaf").unwrap();
    symlink("small.txt", root.join("link")).unwrap();
    symlink("/nonexistent/target", root.join("dangling")).unwrap();
    let secret = root.join("dir/secret");
    fs::write(&secret, b"only the owner").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let script = root.join("run.sh");
    fs::write(&script, b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        root.join(OsStr::from_bytes(b"latin1-\xe9t\xe9")),
        b"not utf-8 name",
    )
    .unwrap();
    sparse_file(&root.join("sparse-5g"), (5u64 << 30) + 123);
    let old = filetime(1_600_000_000);
    set_mtime(&root.join("small.txt"), old);
}

/// `size` bytes, mostly holes, with a few written blocks (one past 4 GiB).
pub fn sparse_file(path: &Path, size: u64) {
    let mut f = File::create(path).unwrap();
    f.set_len(size).unwrap();
    for (i, offset) in [0u64, 1 << 20, (4u64 << 30) + 4096, size - 10]
        .into_iter()
        .enumerate()
    {
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(&noise(100 + i as u64, 10)).unwrap();
    }
}

fn filetime(secs: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: secs,
        tv_nsec: 123_456_789,
    }
}

fn set_mtime(path: &Path, t: libc::timespec) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let times = [t, t];
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0);
}

/// Every entry of `root`, relative, sorted, with the metadata restore must keep.
fn entries(root: &Path) -> Vec<(Vec<u8>, String)> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(Vec<u8>, String)>) {
    let mut children: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    children.sort();
    for path in children {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        if rel.starts_with(b".backstop") {
            continue;
        }
        let m = fs::symlink_metadata(&path).unwrap();
        let kind = if m.file_type().is_symlink() {
            format!("link -> {}", fs::read_link(&path).unwrap().display())
        } else if m.is_dir() {
            format!("dir mode {:o}", m.mode() & 0o7777)
        } else {
            format!(
                "file mode {:o} size {} mtime {}.{:09}",
                m.mode() & 0o7777,
                m.size(),
                m.mtime(),
                m.mtime_nsec()
            )
        };
        out.push((rel, kind));
        if m.is_dir() {
            walk(root, &path, out);
        }
    }
}

/// Asserts that `actual` holds exactly what `expected` holds: the same entries, types, modes,
/// sizes, mtimes (files), symlink targets, and the same bytes in every file.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let (a, b) = (entries(expected), entries(actual));
    if a != b {
        let only_a: Vec<_> = a
            .iter()
            .filter(|e| !b.contains(e))
            .map(|(p, k)| format!("{} {k}", String::from_utf8_lossy(p)))
            .collect();
        let only_b: Vec<_> = b
            .iter()
            .filter(|e| !a.contains(e))
            .map(|(p, k)| format!("{} {k}", String::from_utf8_lossy(p)))
            .collect();
        panic!("trees differ\n  only in source: {only_a:#?}\n  only in restore: {only_b:#?}");
    }
    for (rel, kind) in &a {
        if kind.starts_with("file") {
            let rel = OsStr::from_bytes(rel);
            assert_same_bytes(&expected.join(rel), &actual.join(rel));
        }
    }
}

fn assert_same_bytes(a: &Path, b: &Path) {
    let (mut fa, mut fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut fa, &mut ba);
        let m = read_full(&mut fb, &mut bb);
        assert_eq!(
            n,
            m,
            "{} and {} differ in length at {offset}",
            a.display(),
            b.display()
        );
        if n == 0 {
            return;
        }
        assert!(
            ba[..n] == bb[..n],
            "{} and {} differ in the MiB at {offset}",
            a.display(),
            b.display()
        );
        offset += n as u64;
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..]).unwrap() {
            0 => break,
            n => filled += n,
        }
    }
    filled
}

/// `cp -a`: a snapshot of a tree to compare a later restore with.
pub fn copy_tree(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg("--sparse=always")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}
