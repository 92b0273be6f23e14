//! The BitShipper binary's library: settings, the application wiring, administrative commands
//! and the command line. `main.rs` only calls [`cli::main`].

pub mod admin;
pub mod app;
pub mod bench;
pub mod bench_lake;
pub mod cli;
pub mod demo;
pub mod import;
pub mod lake;
pub mod settings;
pub mod simulate;
pub mod telemetry;
pub mod train;

pub use app::Application;
pub use settings::Settings;
