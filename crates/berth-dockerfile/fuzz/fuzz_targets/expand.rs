//! Expansion must never panic, whatever the word, the lexer options and the
//! variables. The first byte picks the options; after an optional NUL byte come
//! `KEY=VALUE` lines for the environment.
#![no_main]

use berth_dockerfile::shell::{Envs, Lex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&opts, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (word, env_text) = text.split_once('\0').unwrap_or((&text, ""));
    let mut env = Envs::from_slice(&["PWD=/home", "EMPTY=", "X=*/"]);
    for line in env_text.lines() {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        env.set(k, v);
    }
    let mut lex = Lex::new(if opts & 1 == 0 { '\\' } else { '`' });
    lex.raw_quotes = opts & 2 != 0;
    lex.raw_escapes = opts & 4 != 0;
    lex.skip_unset_env = opts & 8 != 0;
    lex.skip_process_quotes = opts & 16 != 0;
    let _ = lex.process_word(word, &env);
    let _ = lex.process_words(word, &env);
    let _ = lex.process_word_with_matches(word, &env);
    let _ = berth_dockerfile::parse_heredoc(word);
});
