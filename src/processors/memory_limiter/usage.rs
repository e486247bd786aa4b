//! Reading memory use and the memory available, from `/proc` and the cgroup files.
//!
//! Resident set size is `/proc/self/statm`'s second field (pages) times the page size, which
//! comes from the kernel's auxiliary vector (`AT_PAGESZ` in `/proc/self/auxv`), so no `libc`
//! call is needed.

use std::io;

/// `AT_PAGESZ` in the ELF auxiliary vector.
const AT_PAGESZ: u64 = 6;

/// The page size in bytes (4096 when the auxiliary vector cannot be read).
pub fn page_size() -> u64 {
    std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|raw| page_size_from_auxv(&raw))
        .unwrap_or(4096)
}

/// `AT_PAGESZ` from a raw auxiliary vector of native-endian `usize` pairs.
fn page_size_from_auxv(raw: &[u8]) -> Option<u64> {
    const WORD: usize = std::mem::size_of::<usize>();
    let word = |b: &[u8]| -> u64 {
        let mut buf = [0u8; WORD];
        buf.copy_from_slice(b);
        usize::from_ne_bytes(buf) as u64
    };
    raw.chunks_exact(2 * WORD)
        .map(|pair| (word(&pair[..WORD]), word(&pair[WORD..])))
        .find(|(key, _)| *key == AT_PAGESZ)
        .map(|(_, value)| value)
        .filter(|v| *v > 0)
}

/// Resident memory of this process in bytes.
///
/// # Errors
/// When `/proc/self/statm` cannot be read or parsed.
pub fn rss(page_size: u64) -> io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    parse_statm(&statm)
        .map(|pages| pages * page_size)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/self/statm"))
}

/// The resident page count: the second field of `statm`.
fn parse_statm(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// Memory the process may use in bytes: the cgroup limit when one is set (v2
/// `memory.max`, else v1 `memory.limit_in_bytes`), capped at the host's `MemTotal`.
///
/// # Errors
/// When `/proc/meminfo` cannot be read.
pub fn total_memory() -> io::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let host = parse_meminfo_total(&meminfo).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "no MemTotal in /proc/meminfo")
    })?;
    Ok(cgroup_limit().map_or(host, |limit| limit.min(host)))
}

fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn cgroup_limit() -> Option<u64> {
    let v2 = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("0::"))
                .map(|p| p.trim().to_owned())
        })
        .and_then(|path| {
            std::fs::read_to_string(format!("/sys/fs/cgroup{path}/memory.max"))
                .or_else(|_| std::fs::read_to_string("/sys/fs/cgroup/memory.max"))
                .ok()
        })
        .and_then(|v| parse_limit(&v));
    v2.or_else(|| {
        std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes")
            .ok()
            .and_then(|v| parse_limit(&v))
    })
}

/// A cgroup limit file's value: `max` or a page-rounded `i64::MAX` mean "no limit".
fn parse_limit(text: &str) -> Option<u64> {
    let v: u64 = text.trim().parse().ok()?;
    (v < (1 << 62)).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_second_field_is_resident_pages() {
        assert_eq!(parse_statm("5120 1234 300 10 0 900 0\n"), Some(1234));
        assert_eq!(parse_statm("garbage"), None);
    }

    #[test]
    fn meminfo_total_in_bytes() {
        let text = "MemTotal:       24731184 kB\nMemFree:  1 kB\n";
        assert_eq!(parse_meminfo_total(text), Some(24_731_184 * 1024));
    }

    #[test]
    fn cgroup_limits() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("536870912\n"), Some(512 << 20));
    }

    #[test]
    fn auxv_page_size() {
        let mut raw = Vec::new();
        for (k, v) in [(3usize, 64usize), (AT_PAGESZ as usize, 16384), (0, 0)] {
            raw.extend_from_slice(&k.to_ne_bytes());
            raw.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(page_size_from_auxv(&raw), Some(16384));
        assert_eq!(page_size_from_auxv(&raw[..16]), None);
    }

    #[test]
    fn this_process_has_resident_memory() {
        let rss = rss(page_size()).unwrap();
        assert!(rss > 1 << 20, "{rss}");
        assert!(total_memory().unwrap() > rss);
    }
}
