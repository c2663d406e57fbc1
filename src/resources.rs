//! Memory a run will need, estimated from its config before anything is allocated, against a limit:
//! `--max-memory` when given, else the memory available when the run starts (`MemAvailable` in
//! `/proc/meminfo`; no check where that cannot be read). A leaf module: it knows sizes, not configs.
//!
//! The estimate is a sum of coarse, deliberately generous terms (bytes of f64, with the copies each
//! stage keeps):
//!
//! ```text
//! samples     N · (2d + 1) · 8 · 4   (+ N · d² · 8 · 2 with Jacobian labels)
//! network     P · 8 · 10              (host weights, device f32/f64 copies, gradients, Adam m and v, 2 shards)
//! batch       min(B, N) · w · h · 8 · 12
//! evaluation  E · M · T · (3d + 2d²) · 8
//! ```
//!
//! with `N` sampled points, `P` parameters, `B` the batch, `w × h` the hidden layers, `E` evaluated eps,
//! `M` test states and `T` output times. Its purpose is to refuse a config whose counts are absurd (a
//! width of 10⁸, a cloud of 10¹¹ points) with a message instead of an allocation abort or hours of
//! swapping, not to predict the peak to the megabyte.

use std::sync::atomic::{AtomicU64, Ordering};

/// Keeps freed memory in the process instead of handing it back to the kernel after every tensor
/// (glibc only; elsewhere nothing). A training step allocates and frees tensors of megabytes (a
/// batch of 8192 × 128 f32 activations is 4 MiB) dozens of times; glibc's default thresholds return
/// them with `munmap`/`brk` and fault the pages in again at the next step, which cost a third of the
/// CPU training time at batch 8192 (`stiffx bench`: 100k → 145k samples/s on 2 cores,
/// results/bench/README.md). Allocations below 32 MiB stay on the heap, and the heap is trimmed only
/// above 1 GiB of free memory at its top: the resident size stays at the run's peak, as with
/// PyTorch's caching allocator. Call once at start, before threads allocate.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Makes every thread allocate from glibc's one main arena (glibc only; elsewhere nothing). Called by
/// the `stiffx` binary, which owns its process; the Python module leaves its host's allocator alone.
///
/// By default each thread that allocates (a training shard, a stacked shard) gets an arena of its
/// own, made of heaps of at most 64 MiB that glibc unmaps as they empty, whatever the thresholds of
/// [`keep_freed_memory`]. With 48 networks trained together a shard's activations are 12 MiB each:
/// the heaps kept being unmapped and mapped again, and the first writes into them (the SiLU's output)
/// took a copy-on-write fault with a TLB shootdown on the other core. That was 17 % of the samples in
/// `perf` and 5.4 s of system time in 17 s; with one arena, 1.0 s, and M = 48 trains 1.3× faster
/// (results/bench/README.md). A shard makes a few large allocations per layer, so the one arena's
/// lock is not contended. Call once at start, before threads allocate.
pub fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

use crate::error::{Error, Result};

/// The `--max-memory` override in bytes (0: none).
static MAX_MEMORY: AtomicU64 = AtomicU64::new(0);

/// Sets the memory limit of every later check in this process (`None`: back to the memory available).
pub fn set_max_memory(bytes: Option<u64>) {
    MAX_MEMORY.store(bytes.unwrap_or(0), Ordering::Relaxed);
}

/// The limit in bytes: the `--max-memory` override, else `MemAvailable` now; `None` when neither is known.
pub fn limit() -> Option<u64> {
    match MAX_MEMORY.load(Ordering::Relaxed) {
        0 => available(),
        b => Some(b),
    }
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
fn available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Parses a size as people write it: `2000000000`, `512M`, `8G`, `1.5GiB`, `64k` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => -1,
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && shift >= 0 && v * 2f64.powi(shift) < 2f64.powi(63) => {
            Ok((v * 2f64.powi(shift)) as u64)
        }
        _ => Err(Error::invalid("--max-memory", s, "a size > 0 in bytes, or with a unit: 512M, 8G, 1.5GiB")),
    }
}

/// A size for people: `1.2 GB`.
pub fn human(bytes: f64) -> String {
    match bytes {
        b if b >= 1e12 => format!("{:.1} TB", b / 1e12),
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        b => format!("{:.0} kB", b / 1e3),
    }
}

/// Refuses `parts` (named estimates in bytes: the config fields that set them, and the bytes) when
/// their sum exceeds `limit`; the error names the largest part's fields, the estimate and the limit.
pub fn check(parts: &[(&str, f64)], limit: Option<u64>) -> Result<()> {
    let Some(limit) = limit else { return Ok(()) };
    let total: f64 = parts.iter().map(|(_, b)| b).sum();
    if total <= limit as f64 {
        return Ok(());
    }
    let (field, _) = parts.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or(("config", total));
    let list = parts.iter().map(|(f, b)| format!("{f}: {}", human(*b))).collect::<Vec<_>>().join(", ");
    Err(Error::invalid(
        field,
        format!("a run needing about {} ({list})", human(total)),
        format!(
            "at most the memory limit of {} (--max-memory; default: the memory available at start); make the counts smaller",
            human(limit as f64)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_bad_ones_name_the_flag() {
        assert_eq!(parse_size("2000").unwrap(), 2000);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("8g").unwrap(), 8 << 30);
        for bad in ["", "0", "-1G", "12X", "nanG", "1e30T"] {
            let e = parse_size(bad).unwrap_err().to_string();
            assert!(e.contains("--max-memory"), "{bad}: {e}");
        }
    }

    #[test]
    fn check_names_the_largest_part_and_both_sizes() {
        assert!(check(&[("a", 1e9)], None).is_ok());
        assert!(check(&[("a", 1e9), ("b", 1e9)], Some(3_000_000_000)).is_ok());
        let e = check(&[("sampler", 3e9), ("model.width", 8e10)], Some(1 << 30)).unwrap_err().to_string();
        assert!(e.contains("model.width") && e.contains("83.0 GB") && e.contains("1.1 GB"), "{e}");
    }
}
