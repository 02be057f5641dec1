//! The `gatelake` binary: everything user-facing lives in `cli`.

mod cli;

fn main() -> std::process::ExitCode {
    return_big_buffers_to_the_system();
    cli::main().into()
}

/// Have glibc's allocator map every allocation of 16 MiB or more on its own and unmap it when
/// freed.
///
/// A pull churns through large buffers: compression blocks, growing chunk files, parquet row
/// groups, upload bodies, freed on several threads. By default glibc raises its mmap threshold
/// after the first such buffer is freed, and from then on serves them from per-thread heaps
/// that keep freed memory, so resident memory crept up with every chunk: 10,000,000 records
/// peaked 35-60% above 1,000,000 (`bench/memory.sh`). With a fixed threshold the peak no longer
/// depends on how many chunks a run writes. 16 MiB keeps the chunk-sized buffers (what grew)
/// out of the heaps; a lower one (1 MiB) also caught parquet's column buffers and cost parquet
/// 20% of its speed in fresh page faults. Large reallocations stay cheap (`mremap`).
///
/// Fixing the mmap threshold also fixes the trim threshold (how much free memory a heap keeps
/// at its top before giving it back) at glibc's 128 KiB: a page body of a few hundred KiB,
/// freed on the encoder thread, then handed the top of the heap back to the system after
/// nearly every page, and the next page faulted it in again (half of a pull's 76,000 page
/// faults per million records, 6% of its CPU). Heaps keep up to `TRIM_THRESHOLD` instead:
/// 2 MiB. It was 8 MiB until page bodies and compression blocks were pooled (`buffers`);
/// since then 2 MiB costs no CPU (jsonl.gz and parquet, 1,000,000 records), and every heap
/// a parquet writer thread had used no longer kept 7 MiB of free top through the rest of
/// the run (bench/README.md, "Issue 20, round seven").
fn return_big_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const TRIM_THRESHOLD: libc::c_int = 2 << 20;
        // SAFETY: mallopt takes two integers and only changes the allocator's tuning; it is
        // called before any other thread exists. A failure (0) leaves glibc's defaults.
        let _ = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20) };
        // SAFETY: as above.
        let _ = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) };
    }
}
