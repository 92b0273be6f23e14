//! Entry point: everything lives in the library so tests drive the same code.

fn main() -> std::process::ExitCode {
    bitshipper::cli::main()
}
