//! The `campaignd` binary: parses the command line and hands over to the library.

mod cli;

/// The system allocator, keeping two of sled's freed IO buffers for its next ones.
#[global_allocator]
static ALLOCATOR: campaignd::store::segment_buffers::SegmentBuffers =
    campaignd::store::segment_buffers::SegmentBuffers::new();

fn main() -> std::process::ExitCode {
    // Before any thread starts: big buffers freed by the store go back to the OS, and threads
    // share one malloc arena per core.
    campaignd::store::tune_malloc();
    cli::main()
}
