//! The boot-argument parser on any line: it never panics, every argument
//! is either applied or reported exactly once, and the result is what the
//! arguments give one at a time, the last one winning.
#![no_main]

use bootargs::{ArgError, BootArgs, SOAK_MINUTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let line: &str = &line;
    let mut errors: Vec<ArgError<'_>> = Vec::new();
    let args = BootArgs::parse(line, |e| errors.push(e));

    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    assert!(errors.len() <= words.len());
    for e in &errors {
        assert!(
            words.contains(&e.arg),
            "reported {:?}, not an argument",
            e.arg
        );
        let msg = e.to_string();
        assert!(msg.starts_with("bootargs: '") && msg.ends_with("; ignored"));
        assert!(!e.problem.is_empty());
    }
    if let Some(m) = args.minutes {
        assert!(SOAK_MINUTES.contains(&m));
    }
    if let Some(b) = args.board {
        assert!(!b.is_empty() && !b.contains(|c: char| c.is_ascii_whitespace()));
    }

    // Argument by argument: each is good or reported, and folding the good
    // ones over the defaults gives the same arguments.
    let mut folded = BootArgs::default();
    let mut reported = 0;
    for w in &words {
        let mut bad = 0;
        let one = BootArgs::parse(w, |_| bad += 1);
        assert!(bad <= 1);
        reported += bad;
        if bad == 0 {
            let d = BootArgs::default();
            macro_rules! take {
                ($($f:ident),*) => { $( if one.$f != d.$f { folded.$f = one.$f; } )* };
            }
            take!(
                mode,
                semihosting,
                loglevel,
                board,
                inject,
                persist,
                scale,
                seed,
                minutes
            );
            // A good argument that sets a field to its default value (e.g.
            // mode=demo after mode=soak) must reset it too.
            if w.starts_with("mode=") {
                folded.mode = one.mode;
            }
            if w.starts_with("loglevel=") {
                folded.loglevel = one.loglevel;
            }
            if w.starts_with("scale=") {
                folded.scale = one.scale;
            }
            if w.starts_with("seed=") {
                folded.seed = one.seed;
            }
        }
    }
    assert_eq!(reported, errors.len());
    assert_eq!(folded, args);
});
