//! The `blitd` binary; the daemon itself is in the library.

fn main() -> std::process::ExitCode {
    blitd::main_with_args(std::env::args_os().collect())
}
