//! Entry point: everything lives in the library so tests drive the same code.

// The ingest path allocates many small JSON values; mimalloc handles that far better than the
// system allocator (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    bitshipper::cli::main()
}
