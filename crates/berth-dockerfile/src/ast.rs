//! The syntax tree BuildKit's parser produces, with source positions.

use crate::unicode::{go_quote_into, go_to_lower, trim_space};

/// Where a node comes from in the source text.
///
/// Lines are 1-based and inclusive. An instruction's `end_line` is the last physical
/// line it consumed: continuation lines, comment and blank lines dropped inside a
/// continuation, and heredoc bodies with their terminator all count, as in BuildKit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// First line.
    pub start_line: usize,
    /// Last line.
    pub end_line: usize,
    /// 1-based column, counted in characters, of the instruction keyword on
    /// `start_line`. `None` where the position is not known (argument nodes, whose
    /// text may come from several joined lines, and the root).
    pub column: Option<usize>,
    /// Byte offset in the source where `start_line` begins.
    pub start_offset: usize,
    /// Byte offset just past `end_line` (its newline included).
    pub end_offset: usize,
}

impl Span {
    /// The source text this span covers (whole lines).
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        source.get(self.start_offset..self.end_offset).unwrap_or("")
    }
}

/// A heredoc attached to an instruction (`RUN <<EOF`, `COPY <<FILE /dst`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Heredoc {
    /// The terminator word with quotes removed (`EOF` for `<<'EOF'`).
    pub name: String,
    /// The file descriptor written before `<<` (`3<<EOF`), 0 when absent.
    pub file_descriptor: u64,
    /// False when any part of the terminator word was quoted: then the content is
    /// taken literally, without variable expansion (as in a POSIX shell).
    pub expand: bool,
    /// `<<-`: leading tabs are ignored when looking for the terminator, and
    /// [`chomp_heredoc_content`](crate::chomp_heredoc_content) strips them from the
    /// content when it is used.
    pub chomp: bool,
    /// The lines between the instruction and the terminator, with their newlines.
    pub content: String,
}

/// A node of the syntax tree, shaped as BuildKit's `parser.Node`.
///
/// * The root has an empty `value` and one child per instruction.
/// * An instruction node has `value` = the keyword as written (`RUN`, `run`), its
///   leading `--flags`, and its arguments in `args`.
/// * `ONBUILD`'s single argument is a wrapper node with an empty value whose only
///   child is the triggered instruction.
/// * An unknown instruction gets one empty argument (BuildKit's `parseIgnore`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    /// The keyword (instruction nodes) or the argument text.
    pub value: String,
    /// The argument chain, BuildKit's `Next` linked list as a vector.
    pub args: Vec<Node>,
    /// Instructions (for the root) or the ONBUILD trigger (for its wrapper node).
    pub children: Vec<Node>,
    /// Heredocs attached to this instruction (RUN, COPY, ADD, and ONBUILD of those).
    pub heredocs: Vec<Heredoc>,
    /// True when the arguments were written in JSON (exec) form.
    pub json: bool,
    /// The logical line after continuation joining (instruction nodes).
    pub original: String,
    /// Leading `--flags` with quotes and escapes removed, for example `--from=build`.
    pub flags: Vec<String>,
    /// Comment lines directly above the instruction, without the `#`.
    pub prev_comment: Vec<String>,
    /// Source position.
    pub span: Span,
}

impl Node {
    /// The keyword, lowercased (`run` for `RUN`), as BuildKit compares it.
    pub fn keyword(&self) -> String {
        go_to_lower(&self.value)
    }

    /// The argument values (BuildKit's `nodeArgs`): for ONBUILD, the trigger keyword
    /// followed by the trigger's arguments (its flags are not included).
    pub fn arg_values(&self) -> Vec<String> {
        let mut out = Vec::new();
        for arg in &self.args {
            match arg.children.as_slice() {
                [] => out.push(arg.value.clone()),
                [inner] => {
                    out.push(inner.value.clone());
                    out.extend(inner.arg_values());
                }
                _ => {}
            }
        }
        out
    }

    /// The ONBUILD trigger instruction, when this is an ONBUILD node with one.
    pub fn onbuild_trigger(&self) -> Option<&Node> {
        self.args.first().and_then(|a| a.children.first())
    }

    /// Prints the tree as BuildKit's `Node.Dump` does: one `(keyword "arg" …)` line
    /// per instruction, arguments quoted with Go's `strconv.Quote`. The conformance
    /// files' `result` is exactly `dump() + "\n"`.
    pub fn dump(&self) -> String {
        let mut s = go_to_lower(&self.value);
        if !self.flags.is_empty() {
            s.push_str(" [");
            for (i, f) in self.flags.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                go_quote_into(&mut s, f);
            }
            s.push(']');
        }
        for c in &self.children {
            s.push('(');
            s.push_str(&c.dump());
            s.push_str(")\n");
        }
        for n in &self.args {
            s.push(' ');
            if n.children.is_empty() {
                go_quote_into(&mut s, &n.value);
            } else {
                s.push_str(&n.dump());
            }
        }
        trim_space(&s).to_string()
    }
}

/// A parser directive found at the top of the file (`# syntax=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// `syntax`, `escape` or `check` (lowercased).
    pub name: String,
    /// The value with surrounding blanks removed.
    pub value: String,
    /// The 1-based line.
    pub line: usize,
}

/// A non-fatal finding of the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// One-line summary, as BuildKit words it.
    pub short: String,
    /// Further explanation.
    pub detail: Vec<String>,
    /// Documentation page for the rule.
    pub url: String,
    /// The line it concerns.
    pub line: usize,
}

/// The result of [`parse`](crate::parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseResult {
    /// The root node; its children are the instructions.
    pub ast: Node,
    /// The escape token in force (`\` unless `# escape=` says otherwise).
    pub escape_token: char,
    /// Parser directives, in source order.
    pub directives: Vec<Directive>,
    /// Warnings such as empty continuation lines.
    pub warnings: Vec<Warning>,
}
