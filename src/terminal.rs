//! Terminal output that never stops the work: the crate's `println!`, `print!`, `eprintln!`
//! and `eprint!` (defined in `lib.rs`, shadowing std's) write here. A closed pipe (`chorus
//! run ... | head -1`) or a full terminal buffer drops the line instead of panicking, so a run
//! still ends by itself and writes its reports.

use std::fmt;
use std::io::Write;

/// Writes the text and a newline in one write of a locked stream; errors are dropped.
pub fn write_line(out: &mut dyn Write, args: fmt::Arguments<'_>) {
    let _ = out.write_fmt(format_args!("{args}\n"));
}

/// Writes the text; errors are dropped.
pub fn write(out: &mut dyn Write, args: fmt::Arguments<'_>) {
    let _ = out.write_fmt(args);
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stream_drops_the_line() {
        write_line(&mut Closed, format_args!("{}", 1));
        write(&mut Closed, format_args!("x"));
        let mut open = Vec::new();
        write_line(&mut open, format_args!("a {}", 2));
        assert_eq!(open, b"a 2\n");
    }
}
