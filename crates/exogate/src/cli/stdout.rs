//! (hardening) What the CLI prints on stdout goes through here, so that a reader that stops
//! early (`exogate … | head`) ends the command quietly: a broken pipe exits with status 0 and
//! no message (Rust ignores `SIGPIPE`, so `println!` would panic instead). Any other failure to
//! write is said on stderr and exits 1.

use std::io::Write as _;

fn written(result: std::io::Result<()>) {
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error [output_failed]: cannot write to standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// Writes `text` and a line end to stdout.
pub fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    written(
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush()),
    );
}

/// Writes `text` to stdout as it is.
pub fn text(text: &str) {
    let mut out = std::io::stdout().lock();
    written(out.write_all(text.as_bytes()).and_then(|()| out.flush()));
}
