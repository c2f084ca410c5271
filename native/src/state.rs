//! Where `chatserver` keeps its files unless told otherwise: the directory
//! `data/` under the current directory, holding the user store and the
//! server's key, readable only by its owner on Unix.

use std::fs;
use std::io;
use std::path::Path;

/// The default state directory, relative to the current directory.
pub const DEFAULT_DIR: &str = "data";

/// The default user store, in [`DEFAULT_DIR`].
pub const DEFAULT_USERS: &str = "data/chat_users.json";

/// The server key's file name, beside the user store unless `--key` says
/// otherwise.
pub const KEY_FILE: &str = "chat_server.key";

/// The directory `path` is in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether `path` is a file in the default state directory, which the
/// server creates when it is missing (any other directory must exist).
pub fn in_default_dir(path: &Path) -> bool {
    parent_dir(path) == Path::new(DEFAULT_DIR)
}

/// Creates the directory `dir` if it is missing (its parent must exist),
/// readable only by its owner on Unix. An existing directory is left as it
/// is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_in_the_default_dir() {
        assert!(in_default_dir(Path::new(DEFAULT_USERS)));
        assert!(in_default_dir(
            &Path::new(DEFAULT_USERS).with_file_name(KEY_FILE)
        ));
        assert!(!in_default_dir(Path::new("chat_users.json")));
        assert!(!in_default_dir(Path::new("/srv/data/chat_users.json")));
        assert!(!in_default_dir(Path::new("data/sub/chat_users.json")));
    }

    #[test]
    fn the_dir_is_created_once_and_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        create_private_dir(&dir).unwrap();
        fs::write(dir.join("kept"), b"x").unwrap();
        create_private_dir(&dir).unwrap();
        assert!(dir.join("kept").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let file = tmp.path().join("file");
        fs::write(&file, b"x").unwrap();
        assert!(create_private_dir(&file).is_err(), "a file is not a dir");
        assert!(create_private_dir(&tmp.path().join("a/b")).is_err());
    }
}
