//! The user and group that CGI programs run as: `nobody`'s when the server
//! runs as root, as Python's CGIHTTPRequestHandler does.

use std::sync::OnceLock;

/// The user and group programs run as: `nobody`'s when the server runs as
/// root (as Python's CGIHTTPRequestHandler does), none otherwise.
pub fn unprivileged_ids() -> Option<(u32, u32)> {
    static IDS: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *IDS.get_or_init(|| {
        rustix::process::geteuid().is_root().then(|| {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            nobody(&passwd).unwrap_or((65534, 65534))
        })
    })
}

/// `nobody`'s user and group ids in an `/etc/passwd` text.
fn nobody(passwd: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != "nobody" {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nobody_is_read_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      nobody:x:65534:65533:nobody:/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(nobody(passwd), Some((65534, 65533)));
        assert_eq!(nobody("root:x:0:0::/:/bin/sh\n"), None);
        assert_eq!(nobody("nobody:x:bad:1::/:\n"), None);
    }
}
