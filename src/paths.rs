//! Where things live: the control socket, the data directory, per-component log files.
//!
//! The socket's directory is private (0700) because the socket is the key to the fleet: whoever can
//! connect can stop every component. The core also checks each peer's uid; the directory keeps
//! other users from even reaching the socket. This module only computes and prepares paths; it does
//! not open sockets or files of its own.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The environment variable that overrides the socket path.
pub const SOCKET_ENV: &str = "HMS_SOCKET";
/// The environment variable that overrides the data directory.
pub const DATA_DIR_ENV: &str = "HMS_DATA_DIR";

/// Errors preparing a private directory.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// The directory could not be created or inspected.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    /// The directory belongs to another user: using it would hand them the socket.
    #[error(
        "{path} belongs to uid {owner}, not to you (uid {me}); remove it or choose another path with --socket"
    )]
    NotOwner { path: String, owner: u32, me: u32 },
}

fn uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// The default directory for the socket: `$XDG_RUNTIME_DIR/hms-console`, else
/// `/tmp/hms-console-<uid>`.
pub fn default_socket_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("hms-console"),
        _ => PathBuf::from(format!("/tmp/hms-console-{}", uid())),
    }
}

/// The default socket path inside [`default_socket_dir`].
pub fn default_socket() -> PathBuf {
    default_socket_dir().join("core.sock")
}

/// The socket to use: the explicit one, else `$HMS_SOCKET`, else the default.
pub fn socket_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os(SOCKET_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => default_socket(),
    }
}

/// The default data directory: `$XDG_STATE_HOME/hms-console`, else `~/.local/state/hms-console`,
/// else a private directory under /tmp.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("hms-console");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/state/hms-console");
    }
    PathBuf::from(format!("/tmp/hms-console-{}/data", uid()))
}

/// The data directory to use: the explicit one, else `$HMS_DATA_DIR`, else the default.
pub fn data_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os(DATA_DIR_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => default_data_dir(),
    }
}

/// Creates `dir` (and its parents) if missing, with mode 0700 for what it creates. An existing
/// directory must belong to us; when `tighten` is set its mode is also reduced to 0700 (done for
/// our own socket directory, never for a directory the user named that may hold other things).
pub fn ensure_private_dir(dir: &Path, tighten: bool) -> Result<(), PathError> {
    let err = |source| PathError::Io {
        path: dir.display().to_string(),
        source,
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
    }
    let meta = std::fs::metadata(dir).map_err(err)?;
    if meta.uid() != uid() {
        return Err(PathError::NotOwner {
            path: dir.display().to_string(),
            owner: meta.uid(),
            me: uid(),
        });
    }
    if tighten && meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// Prepares the socket's directory: private when it is our default directory or one we create.
pub fn prepare_socket_dir(socket: &Path) -> Result<(), PathError> {
    let dir = socket.parent().unwrap_or(Path::new("."));
    let ours = dir == default_socket_dir() || !dir.exists();
    ensure_private_dir(dir, ours)
}

/// The directory of per-component log files.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("logs")
}

/// A component's log file.
pub fn component_log(data_dir: &Path, component: &str) -> PathBuf {
    log_dir(data_dir).join(format!("{component}.log"))
}

/// The core's own log file when it runs detached.
pub fn core_log(data_dir: &Path) -> PathBuf {
    data_dir.join("core.log")
}

/// The program `name` of this package installed beside `exe` (another of its programs), if there
/// is one: same directory, an executable file. `cargo build` puts every program in
/// `target/<profile>/` and `cargo install` in `~/.cargo/bin`; `cargo run` builds only the one it
/// runs, and a program may be copied alone.
pub fn program_beside(exe: &Path, name: &str) -> Option<PathBuf> {
    let program = exe.with_file_name(name);
    is_program(&program).then_some(program)
}

/// Whether `path` is an executable file.
pub fn is_program(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_directory_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        ensure_private_dir(&dir, false).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn our_own_directory_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(tmp.path(), true).unwrap();
        let mode = std::fs::metadata(tmp.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
