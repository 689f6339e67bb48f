//! What the kernel is given of an SR program: its source without comments or indentation, and
//! only the prelude functions it uses. Shared by `build.rs`, which writes every program of
//! `src/lua/` so at build time, and by the crate's unit tests.
//!
//! Why: ZFS compiles a channel program from source at every call, in the kernel; lexing the
//! whole prelude (its comments included) for a program that uses three of its functions cost
//! 6 % of the test VM's busy time under the crash campaign. Line numbers are kept (a dropped
//! line becomes an empty one), so that a Lua error still names the line of the source file.

use std::collections::BTreeSet;

/// `src` without comments, leading or trailing blanks: every line kept, strings untouched.
pub fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    // Whether the current output line has had anything but blanks yet.
    let mut at_line_start = true;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            trim_end(&mut out);
            out.push(b'\n');
            at_line_start = true;
            i += 1;
        } else if (c == b' ' || c == b'\t' || c == b'\r') && at_line_start {
            i += 1;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            // A comment: long (`--[[ ... ]]`, `--[==[ ... ]==]`) or to the end of the line.
            match long_bracket(b, i + 2) {
                Some(level) => {
                    let end = long_end(b, i + 2, level);
                    // Its newlines stay, so the line numbers do.
                    for _ in b[i..end].iter().filter(|&&x| x == b'\n') {
                        trim_end(&mut out);
                        out.push(b'\n');
                        at_line_start = true;
                    }
                    i = end;
                }
                None => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
            }
        } else if c == b'"' || c == b'\'' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != c && b[i] != b'\n' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            out.extend_from_slice(&b[start..i]);
            at_line_start = false;
        } else if let Some(level) = (c == b'[').then(|| long_bracket(b, i)).flatten() {
            let end = long_end(b, i, level);
            out.extend_from_slice(&b[i..end]);
            i = end;
            at_line_start = false;
        } else {
            out.push(c);
            at_line_start = false;
            i += 1;
        }
    }
    String::from_utf8(out).expect("only ASCII bytes were removed")
}

/// Drop the blanks that end the output's last line.
fn trim_end(out: &mut Vec<u8>) {
    while out
        .last()
        .is_some_and(|&l| l == b' ' || l == b'\t' || l == b'\r')
    {
        out.pop();
    }
}

/// At `b[i]`: `[` followed by `=`* and `[` opens a long bracket of that many `=`.
fn long_bracket(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut j = i + 1;
    while b.get(j) == Some(&b'=') {
        j += 1;
    }
    (b.get(j) == Some(&b'[')).then_some(j - i - 1)
}

/// The index just past the long bracket opened at `b[i]` with `level` `=` (or the end).
fn long_end(b: &[u8], i: usize, level: usize) -> usize {
    let mut close = vec![b']'];
    close.extend(std::iter::repeat_n(b'=', level));
    close.push(b']');
    let from = i + level + 2;
    b[from.min(b.len())..]
        .windows(close.len())
        .position(|w| w == close.as_slice())
        .map_or(b.len(), |p| from + p + close.len())
}

/// The identifiers of Lua source `src` (comments and strings left out).
pub fn identifiers(src: &str) -> BTreeSet<String> {
    let code = strip(src);
    let b = code.as_bytes();
    let mut ids = BTreeSet::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c && b[i] != b'\n' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if let Some(level) = (c == b'[').then(|| long_bracket(b, i)).flatten() {
            i = long_end(b, i, level);
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            ids.insert(code[start..i].to_string());
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    ids
}

/// A top-level `local function NAME` of the prelude: its name and its lines (up to the
/// first line that is `end` alone).
struct Function {
    name: String,
    first: usize,
    last: usize,
}

fn functions(lines: &[&str]) -> Vec<Function> {
    let mut out = vec![];
    let mut i = 0;
    while i < lines.len() {
        if let Some(rest) = lines[i].strip_prefix("local function ") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let last = (i..lines.len())
                .find(|&j| lines[j] == "end")
                .unwrap_or(lines.len() - 1);
            out.push(Function {
                name,
                first: i,
                last,
            });
            i = last + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// The prelude and `program` as the kernel is given them: the prelude's top-level functions
/// that `program` does not use, even through other prelude functions, are empty lines, and
/// both are [`strip`]ped. Everything else of the prelude stays.
pub fn program_text(prelude: &str, program: &str) -> String {
    let lines: Vec<&str> = prelude.lines().collect();
    let fns = functions(&lines);
    let mut used = identifiers(program);
    let mut keep = vec![false; fns.len()];
    loop {
        let mut grew = false;
        for (k, f) in fns.iter().enumerate() {
            if !keep[k] && used.contains(&f.name) {
                keep[k] = true;
                used.extend(identifiers(&lines[f.first..=f.last].join("\n")));
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    let mut shaken = String::with_capacity(prelude.len());
    for (n, line) in lines.iter().enumerate() {
        let dropped = fns
            .iter()
            .zip(&keep)
            .any(|(f, &k)| !k && (f.first..=f.last).contains(&n));
        if !dropped {
            shaken.push_str(line);
        }
        shaken.push('\n');
    }
    // As the source files lie one after the other: the program's lines keep their numbers.
    strip(&shaken) + "\n" + &strip(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_drops_comments_and_indentation_and_keeps_strings_and_lines() {
        let src = "-- head\nlocal a = \"x -- not a comment\" -- tail\n    local b = [[y\n-- z]] --[[ long\ncomment ]] local c = 'q\\'--'\n\t\nreturn a\n";
        let out = strip(src);
        assert_eq!(
            out,
            "\nlocal a = \"x -- not a comment\"\nlocal b = [[y\n-- z]]\nlocal c = 'q\\'--'\n\nreturn a\n"
        );
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn long_brackets_with_levels() {
        assert_eq!(strip("--[==[ a ]] b ]==]x"), "x");
        assert_eq!(strip("s = [=[ ]] -- ]=] t"), "s = [=[ ]] -- ]=] t");
    }

    #[test]
    fn identifiers_skip_strings_comments_and_numbers() {
        let ids = identifiers("local x = f(\"g\", 'h') -- i\nreturn 0x1f + y_2 .. [[j]]");
        let got: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(got, ["f", "local", "return", "x", "y_2"]);
    }

    const PRELUDE: &str = "-- helpers\nlocal function a(x)\n    return x\nend\n\nlocal function b(x)\n    return a(x)\nend\n\nlocal function c()\n    return 1\nend\nlocal K = 2\n";

    #[test]
    fn only_the_functions_a_program_uses_even_indirectly_and_the_same_lines() {
        let out = program_text(PRELUDE, "return b(K)\n");
        assert!(out.contains("local function a(x)"), "{out}");
        assert!(out.contains("local function b(x)"), "{out}");
        assert!(!out.contains("local function c"), "{out}");
        assert!(out.contains("local K = 2"), "{out}");
        assert_eq!(
            out.lines().count(),
            PRELUDE.lines().count() + 1 + 1,
            "{out}"
        );
        assert!(out.ends_with("\nreturn b(K)\n"), "{out}");
    }

    /// Every program of src/lua as built: each prelude function it calls is there.
    #[test]
    fn every_program_keeps_every_prelude_function_it_calls() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lua");
        let prelude = std::fs::read_to_string(dir.join("prelude.lua")).unwrap();
        let lines: Vec<&str> = prelude.lines().collect();
        let names: BTreeSet<String> = functions(&lines).into_iter().map(|f| f.name).collect();
        assert!(names.len() > 10, "{names:?}");
        let mut programs = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "lua") || p.ends_with("prelude.lua") {
                continue;
            }
            let text = program_text(&prelude, &std::fs::read_to_string(&p).unwrap());
            for n in identifiers(&text).intersection(&names) {
                assert!(
                    text.contains(&format!("local function {n}(")),
                    "{}: calls {n}, which is not kept",
                    p.display()
                );
            }
            assert!(!text.contains("--"), "{}: a comment is left", p.display());
            programs += 1;
        }
        assert!(programs > 10);
    }
}
