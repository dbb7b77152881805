//! The `campaignd` binary: parses the command line and hands over to the library.

mod cli;

fn main() -> std::process::ExitCode {
    // Before any thread starts: big buffers freed by the store go back to the OS, and threads
    // share one malloc arena per core.
    campaignd::store::tune_malloc();
    cli::main()
}
