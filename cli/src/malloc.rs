//! Keep memory flat over long runs.
//!
//! glibc gives each thread that meets contention its own malloc arena, up to eight per core, and
//! the decode threads churn a frame buffer per decoded frame; over a long run the arenas' high
//! water marks add up (the `memory` benchmark measured peak RSS 1.2-1.5x higher over 160 inputs
//! than over 16, and 1.17x with arenas capped). One arena per core is plenty for this workload.

/// Cap glibc's malloc arenas at one per core, unless `MALLOC_ARENA_MAX` says otherwise; call
/// once at start, before threads are spawned.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn limit_arenas() {
    if clipline_core::env::is_set(clipline_core::env::MALLOC_ARENA_MAX) {
        return;
    }
    let arenas = clipline_pipeline::config::cores().clamp(1, 64) as libc::c_int;
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
    // exists, and M_ARENA_MAX with a positive count is a documented, valid setting.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

/// Other allocators need no cap.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() {}
