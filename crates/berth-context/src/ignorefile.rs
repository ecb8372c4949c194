//! Reading a `.dockerignore` file into its pattern list, exactly as
//! moby/patternmatcher's `ignorefile.ReadAll`, and finding the file BuildKit uses.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use berth_fs::ResultExt as _;

use crate::golang;

/// Go's `bufio.Scanner` default buffer: a line plus its newline must fit in it.
const MAX_LINE: usize = 64 * 1024;

/// A `.dockerignore` that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreFileError {
    #[error(transparent)]
    Io(#[from] berth_fs::Error),
    /// Docker refuses lines this long too (`bufio.Scanner: token too long`).
    #[error("{}: line {line} is longer than {} bytes", path.display(), MAX_LINE - 1)]
    LineTooLong { path: PathBuf, line: usize },
}

/// Reads the patterns of `.dockerignore` text, in order.
///
/// - Lines end at `\n`; a `\r` before it is dropped. A UTF-8 byte order mark is
///   removed from the first line.
/// - A line whose first character is `#` is a comment. The check comes before
///   trimming: `  # x` is the pattern `# x`, and there are no inline comments.
/// - Lines are trimmed; blank lines are skipped.
/// - `!` marks an exception; the rest is trimmed again, so `! /x` is `!/x`.
/// - The pattern is cleaned like a path (`docs/` is `docs`, `./a/../b` is `b`)
///   and a leading `/` is dropped: patterns are relative to the context root.
///   A line that is only `!` stays `!`; [`crate::Matcher::new`] rejects it.
///
/// Bytes that are not UTF-8 are read as U+FFFD, one per byte, which is how Go's
/// matcher decodes them when it builds a regexp.
pub fn parse_ignore_file(reader: impl BufRead) -> Result<Vec<String>, IgnoreFileError> {
    read_patterns(reader, Path::new(".dockerignore"))
}

/// Reads the patterns of the `.dockerignore` file at `path`; see [`parse_ignore_file`].
pub fn read_ignore_file(path: &Path) -> Result<Vec<String>, IgnoreFileError> {
    let file = std::fs::File::open(path).at("cannot open", path)?;
    read_patterns(std::io::BufReader::new(file), path)
}

/// The ignore file BuildKit's Dockerfile frontend uses, if any: `<Dockerfile>.dockerignore`
/// next to the Dockerfile (e.g. `build/app.Dockerfile.dockerignore`) when it
/// exists, otherwise `.dockerignore` at the context root.
///
/// (The classic builder reads only the context's `.dockerignore`, and its CLI
/// adds `!.dockerignore` and `!<Dockerfile>` when they would be excluded.)
pub fn find_ignore_file(context_dir: &Path, dockerfile: Option<&Path>) -> Option<PathBuf> {
    if let Some(dockerfile) = dockerfile {
        let mut specific = dockerfile.as_os_str().to_os_string();
        specific.push(".dockerignore");
        let specific = PathBuf::from(specific);
        if specific.is_file() {
            return Some(specific);
        }
    }
    let default = context_dir.join(".dockerignore");
    default.is_file().then_some(default)
}

fn read_patterns(mut reader: impl BufRead, path: &Path) -> Result<Vec<String>, IgnoreFileError> {
    let mut patterns = Vec::new();
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        // Read at most one buffer's worth, as bufio.Scanner does.
        let n = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .at("cannot read", path)?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        } else if line.len() == MAX_LINE {
            return Err(IgnoreFileError::LineTooLong {
                path: path.to_path_buf(),
                line: number,
            });
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let mut bytes = line.as_slice();
        if number == 1 {
            bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        }
        if let Some(pattern) = pattern_of_line(&golang::go_lossy(bytes)) {
            patterns.push(pattern);
        }
    }
    Ok(patterns)
}

/// One line of the file to its pattern, or `None` for comments and blank lines.
fn pattern_of_line(line: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let mut pattern = line.trim();
    if pattern.is_empty() {
        return None;
    }
    let invert = pattern.starts_with('!');
    if invert {
        pattern = pattern[1..].trim();
    }
    let mut out = String::with_capacity(pattern.len() + 1);
    if invert {
        out.push('!');
    }
    if !pattern.is_empty() {
        let cleaned = golang::clean(pattern);
        match cleaned.strip_prefix('/') {
            Some(rest) if !rest.is_empty() => out.push_str(rest),
            _ => out.push_str(&cleaned),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Vec<String> {
        parse_ignore_file(text).unwrap()
    }

    #[test]
    fn comments_only_in_column_zero() {
        assert_eq!(parse(b"# c\n  # x\nfoo # y"), ["# x", "foo # y"]);
    }

    #[test]
    fn bom_only_on_first_line_and_crlf() {
        assert_eq!(
            parse(b"\xef\xbb\xbfa\r\n\xef\xbb\xbfb\r\n"),
            ["a", "\u{feff}b"]
        );
        // With the BOM gone the first line is a comment.
        assert_eq!(parse(b"\xef\xbb\xbf# c\nd"), ["d"]);
    }

    #[test]
    fn cleaning_and_leading_slash() {
        assert_eq!(
            parse(b"docs/\n./a/../b\n/\n//x//y/\n! /inverted\n!\n!  \n/..\n!./"),
            ["docs", "b", "/", "x/y", "!inverted", "!", "!", "/", "!."]
        );
    }

    #[test]
    fn long_lines() {
        let mut ok = vec![b'a'; MAX_LINE - 1];
        ok.push(b'\n');
        assert_eq!(parse(&ok).len(), 1);
        let mut ok_at_eof = vec![b'a'; MAX_LINE - 1];
        assert_eq!(parse(&ok_at_eof).len(), 1);
        ok_at_eof.push(b'a');
        let err = parse_ignore_file(ok_at_eof.as_slice()).unwrap_err();
        assert!(
            matches!(err, IgnoreFileError::LineTooLong { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn invalid_utf8_reads_as_replacement_characters() {
        assert_eq!(parse(b"a\xffb\n"), ["a\u{fffd}b"]);
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path();
        assert_eq!(find_ignore_file(ctx, None), None);
        std::fs::write(ctx.join(".dockerignore"), "a").unwrap();
        let dockerfile = ctx.join("build/app.Dockerfile");
        assert_eq!(
            find_ignore_file(ctx, Some(&dockerfile)),
            Some(ctx.join(".dockerignore"))
        );
        std::fs::create_dir(ctx.join("build")).unwrap();
        std::fs::write(ctx.join("build/app.Dockerfile.dockerignore"), "b").unwrap();
        assert_eq!(
            find_ignore_file(ctx, Some(&dockerfile)),
            Some(ctx.join("build/app.Dockerfile.dockerignore"))
        );
        assert_eq!(
            read_ignore_file(&ctx.join("build/app.Dockerfile.dockerignore")).unwrap(),
            ["b"]
        );
    }
}
