//! Who is on the other end of a Unix socket. Linux-specific (`SO_PEERCRED`).

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// Credentials of a connected peer, as the kernel recorded them at `connect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Process id.
    pub pid: u32,
    /// Effective user id.
    pub uid: u32,
}

/// Reads the peer's credentials from the kernel; they cannot be forged by the peer.
pub fn peer_credentials(stream: &UnixStream) -> io::Result<PeerCredentials> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes passed; the fd is open
    // for the lifetime of `stream`.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCredentials { pid: cred.pid as u32, uid: cred.uid })
}

/// The effective user id of this process.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Checks that the peer runs as the same user as this process.
pub fn check_same_user(stream: &UnixStream) -> io::Result<PeerCredentials> {
    let peer = peer_credentials(stream)?;
    if peer.uid != current_uid() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("peer runs as uid {}, not as this user", peer.uid),
        ));
    }
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_pair_is_the_same_user_and_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let peer = check_same_user(&a).unwrap();
        assert_eq!(peer.pid, std::process::id());
    }
}
