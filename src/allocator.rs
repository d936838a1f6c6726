//! Settings of the C allocator (glibc's malloc, which Rust's global allocator uses here).
//!
//! glibc serves a block of 128 KiB or more with its own mapping and unmaps it when freed, but
//! after the first such free it raises that threshold to the freed size (up to 32 MiB). An
//! argon2 work area is 19 MiB: after the first hash, every later one would come from the heap
//! and stay resident when freed, so the process would keep tens of megabytes it no longer
//! uses. Fixing the thresholds turns that adjustment off.

/// Blocks this large or larger get their own mapping, returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1 << 20;

/// Free memory at the top of the heap beyond this is returned to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 1 << 20;

/// Applies the settings; call it first thing in `main`, before other threads start.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only reads its two integer arguments.
        let ok = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        };
        if !ok {
            eprintln!("warning: the allocator's thresholds could not be set");
        }
    }
}

/// Every `interval`, hands the allocator's free memory back to the system: memory freed in
/// the middle of a heap (the OpenAPI document each worker builds once at start, a burst's
/// buffers) otherwise stays resident until the heap's top is free too. A trim walks the
/// free lists of every arena: well under a millisecond at Steward's sizes.
pub fn spawn_release(interval: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let _ = tokio::task::spawn_blocking(release).await;
        }
    })
}

/// Returns free memory to the system now.
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes the arenas' locks itself and reads only its argument.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
