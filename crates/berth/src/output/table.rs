//! Column alignment as Go's text/tabwriter does it with Docker's settings
//! (minwidth 10, padding 3, spaces), so output lines up byte for byte with
//! `docker`'s.

use std::io::{self, Write};

const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

/// Lines are tab-separated cells; the text after a line's last tab is not
/// padded. Columns are sized over the whole block, as tabwriter does for a
/// table whose lines all have the same cells.
pub fn write_table(out: &mut dyn Write, lines: &[String]) -> io::Result<()> {
    let split: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &split {
        for (i, c) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            let w = (c.chars().count() + PADDING).max(MIN_WIDTH);
            if widths.len() <= i {
                widths.push(w);
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
    }
    for cells in &split {
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate() {
            line.push_str(c);
            if i + 1 < cells.len() {
                let pad = widths[i] - c.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_tabwriter() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            &[
                "REPOSITORY\tTAG\tSIZE".into(),
                "busybox\tlatest\t4.26MB".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "REPOSITORY   TAG       SIZE\nbusybox      latest    4.26MB\n"
        );
    }
}
