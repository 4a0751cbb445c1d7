//! The Docker build context of a commit: `.dockerignore` matching and the context tar.
//!
//! Longin gets a commit as `git archive --format=tar <sha>` on a reader and has
//! to hand the engine the tar of one directory of it. The engine never applies
//! `.dockerignore` — the Docker CLI does, while it walks the directory — so this
//! module does the CLI's work, quirks included: a repository must build the
//! same on Longin as with `docker build` on its author's machine, and the
//! ignore file is often what keeps secrets (`.env`) out of an image.
//!
//! What "like the CLI" means here, from moby's `patternmatcher`, `ignorefile`
//! and the archive walker that `docker build` uses:
//! - lines: a UTF-8 BOM is dropped, lines starting with `#` are comments, the
//!   rest is trimmed, blank lines are skipped, a leading `!` re-includes, the
//!   pattern is cleaned like Go's `filepath.Clean` and a leading `/` dropped;
//! - a pattern is translated like moby's (`*` and `?` stay inside a path
//!   segment, `**` spans directories, a pattern with no wildcard is compared
//!   literally, `x/**` is a plain prefix and `**x` a plain suffix), and the
//!   last pattern that matches decides;
//! - the walk: a directory's match results are inherited by everything under
//!   it, an excluded directory is skipped whole unless a `!` pattern's text
//!   starts with that directory, and then only its own entry is left out;
//! - the `Dockerfile` and `.dockerignore` are sent even when ignored.
//!
//! Where moby's regexp translation goes wrong we follow Go's `filepath.Match`
//! instead: `*` or `?` inside `[...]` are class members (moby turns them into
//! regexp fragments), and `\x` is a literal `x` (moby leaves `\d` or `\w` to
//! mean regexp classes). A Dockerfile the CLI's own check fails to re-include
//! (it only looks at part of a path's parents) is re-included anyway: there the
//! CLI cannot build at all. Paths must be UTF-8.

use std::io::{self, Read, Write};

use tar::{Archive, Builder, Entry, EntryType, Header};

/// Name of the ignore file at the root of a build context.
const DOCKERIGNORE: &str = ".dockerignore";

/// Longest symlink target that fits a tar header; longer ones need a GNU record.
const HEADER_LINK_MAX: usize = 100;

/// Why a build context could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A `.dockerignore` line is not a valid pattern (the CLI refuses it too).
    #[error("invalid .dockerignore pattern {pattern:?}: {reason}")]
    Pattern {
        /// The offending line, trimmed.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A path in the spec or in the archive is absolute, has a `..` component or is not UTF-8.
    #[error("unsafe path {path:?}: {reason}")]
    UnsafePath {
        /// The path as given.
        path: String,
        /// What makes it unsafe.
        reason: &'static str,
    },
    /// The Dockerfile does not lie inside the context directory.
    #[error("dockerfile {dockerfile:?} is outside the build context {context:?}")]
    DockerfileOutsideContext {
        /// The Dockerfile path from the repository root.
        dockerfile: String,
        /// The context directory.
        context: String,
    },
    /// The Dockerfile is not a file or symlink of the archive.
    #[error("dockerfile {path:?} is not in the repository")]
    MissingDockerfile {
        /// The Dockerfile path from the repository root.
        path: String,
    },
    /// The files of the context add up to more than the limit.
    #[error("build context is larger than {limit} bytes")]
    TooLarge {
        /// The limit that was passed to [`write_context`].
        limit: u64,
    },
    /// The archive holds an entry that a git tree cannot produce, or a `.dockerignore`
    /// that is not a regular file.
    #[error("unsupported entry {path:?} in the repository archive: {reason}")]
    UnsupportedEntry {
        /// The entry's path.
        path: String,
        /// What is unsupported about it.
        reason: &'static str,
    },
    /// Reading the repository archive or writing the context failed.
    #[error("build context I/O: {0}")]
    Io(#[from] io::Error),
}

/// The patterns of a `.dockerignore`, matching paths the way the Docker CLI does.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore`.
    ///
    /// # Errors
    /// [`ContextError::Pattern`] for a line that is not a valid pattern, such as
    /// an unclosed `[`, a trailing `\`, or a lone `!`.
    pub fn parse(text: &str) -> Result<Self, ContextError> {
        // Docker drops a byte order mark only at the very start of the file.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut ignore = Self::default();
        for line in text.split('\n') {
            let Some(normalized) = normalize_line(line) else {
                continue;
            };
            ignore
                .add(&normalized)
                .map_err(|reason| ContextError::Pattern {
                    pattern: line.trim().to_owned(),
                    reason,
                })?;
        }
        Ok(ignore)
    }

    /// Whether `path` is left out of the build context.
    ///
    /// `path` is relative to the context root, `/`-separated, without a leading
    /// `./`. A path is left out when it matches, or when one of its directories
    /// is skipped whole; the Dockerfile/`.dockerignore` exception is not applied
    /// here (see [`write_context`]).
    #[must_use]
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        if path.is_empty() || path == "." {
            return false;
        }
        Walk::default().excluded(self, path, false)
    }

    /// Adds one line as `ignorefile.ReadAll` left it, the way `patternmatcher.New` does.
    fn add(&mut self, line: &str) -> Result<(), String> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(());
        }
        let cleaned = clean(line);
        let (exclusion, text) = match cleaned.strip_prefix('!') {
            Some("") => return Err("illegal exclusion pattern \"!\"".to_owned()),
            Some(rest) => (true, rest),
            None => (false, cleaned.as_str()),
        };
        let kind = compile(text)?;
        self.patterns.push(Pattern {
            text: text.to_owned(),
            exclusion,
            kind,
        });
        Ok(())
    }

    /// Whether `path` matches, given the per-pattern results of its parent
    /// directory (moby's `MatchesUsingParentResults`); returns this path's results too.
    ///
    /// Go also scans the parents when no parent results are given; the walk
    /// always gives them for nested paths, so that branch never applies.
    fn evaluate(&self, path: &str, parent: Option<&[bool]>) -> (bool, Vec<bool>) {
        let mut matched = false;
        let mut results = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.is_some_and(|p| p.get(i).copied().unwrap_or(false));
            if !hit {
                // Evaluation order matters for the results a child inherits:
                // moby skips patterns that cannot change the outcome so far.
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(path);
            }
            results[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, results)
    }

    /// Whether a `!` pattern could re-include something under the excluded `dir`,
    /// judged as moby's walker does: by the pattern's text alone.
    fn has_exception_under(&self, dir: &str) -> bool {
        self.patterns.iter().any(|p| {
            p.exclusion
                && p.text
                    .strip_prefix(dir)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    /// The CLI's check for whether to re-include a build file (the deprecated
    /// `patternmatcher.Matches`, which compares only as many parent levels as
    /// the pattern has segments).
    fn legacy_matches(&self, file: &str) -> bool {
        let parents: Vec<&str> = file
            .rsplit_once('/')
            .map(|(parent, _)| parent.split('/').collect())
            .unwrap_or_default();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(file);
            let depth = pattern.text.split('/').count();
            if !hit && !parents.is_empty() && depth <= parents.len() {
                hit = pattern.matches(&parents[..depth].join("/"));
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Re-includes `.dockerignore` and the Dockerfile as the CLI does, by
    /// appending `!` patterns for them; those patterns compare literally so that
    /// a file name with glob characters re-includes only itself.
    fn with_build_files(mut self, dockerfile: &str) -> Self {
        for keep in [DOCKERIGNORE, dockerfile] {
            if self.legacy_matches(keep) || self.is_excluded(keep) {
                self.patterns.push(Pattern {
                    text: keep.to_owned(),
                    exclusion: true,
                    kind: MatchKind::Exact,
                });
            }
        }
        self
    }
}

/// One line of a `.dockerignore` as moby's `ignorefile.ReadAll` returns it,
/// or `None` for comments and blank lines.
fn normalize_line(line: &str) -> Option<String> {
    // Go's line scanner drops the '\r' of a "\r\n" line end.
    let line = line.strip_suffix('\r').unwrap_or(line);
    // Comments are recognised before trimming: " # x" is a pattern.
    if line.starts_with('#') {
        return None;
    }
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (invert, body) = match line.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, line),
    };
    let mut body = if body.is_empty() {
        String::new()
    } else {
        clean(body)
    };
    if body.len() > 1 && body.starts_with('/') {
        body.remove(0);
    }
    Some(if invert { format!("!{body}") } else { body })
}

/// Go's `filepath.Clean` on a `/`-separated path.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let body = parts.join("/");
    if rooted {
        format!("/{body}")
    } else if body.is_empty() {
        ".".to_owned()
    } else {
        body
    }
}

/// One compiled `.dockerignore` pattern.
#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern without its `!`, as moby's `Pattern.String()`.
    text: String,
    exclusion: bool,
    kind: MatchKind,
}

/// How a pattern matches, mirroring moby's fast paths: they are not just
/// optimisations, `**x` as a suffix also matches `yx`, which the regexp would not.
#[derive(Debug, Clone)]
enum MatchKind {
    /// No wildcard: the path must equal the text.
    Exact,
    /// `x/**`: the path must start with `x/`.
    Prefix(String),
    /// `**x`: the path must end with `x` (or equal `x` without its leading `/`).
    Suffix(String),
    /// Anything else, as moby's regexp anchored at both ends.
    Tokens(Vec<Token>),
}

/// One element of moby's regexp for a pattern.
#[derive(Debug, Clone)]
enum Token {
    Literal(char),
    /// A `^` outside a class: moby leaves it unescaped, so it anchors at the start.
    StartAnchor,
    /// `?` → `[^/]`.
    OneNotSlash,
    /// `*` → `[^/]*`.
    RunNotSlash,
    /// `**` with more pattern after it → `(.*/)?`.
    OptionalDirs,
    /// `**` at the end after other wildcards → `.*`.
    AnyRest,
    Class(CharClass),
}

/// A `[...]` character class.
#[derive(Debug, Clone)]
struct CharClass {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl CharClass {
    fn contains(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

/// Which of moby's match types a pattern ends up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detected {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

/// Translates a cleaned pattern like moby's `Pattern.compile`, checking its
/// syntax like Go's `filepath.Match` (which moby calls for that purpose).
fn compile(text: &str) -> Result<MatchKind, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut detected = Detected::Exact;
    let mut i = 0;
    while i < chars.len() {
        let first = i == 0;
        let c = chars[i];
        i += 1;
        let (token, kind) = match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                let (token, kind) = double_star(i == chars.len(), detected);
                // moby's `i == 0` check: only a leading `**` makes a suffix match.
                (token, if first { Detected::Suffix } else { kind })
            }
            '*' => (Some(Token::RunNotSlash), Detected::Regexp),
            '?' => (Some(Token::OneNotSlash), Detected::Regexp),
            '\\' => {
                let next = *chars.get(i).ok_or("trailing backslash")?;
                i += 1;
                (Some(Token::Literal(next)), Detected::Regexp)
            }
            '[' => {
                let (class, next) = parse_class(&chars, i)?;
                i = next;
                (Some(Token::Class(class)), Detected::Regexp)
            }
            ']' => (Some(Token::Literal(']')), Detected::Regexp),
            '^' => (Some(Token::StartAnchor), detected),
            other => (Some(Token::Literal(other)), detected),
        };
        tokens.extend(token);
        detected = kind;
    }
    Ok(match detected {
        Detected::Exact => MatchKind::Exact,
        Detected::Prefix => MatchKind::Prefix(text.strip_suffix("**").unwrap_or(text).to_owned()),
        Detected::Suffix => MatchKind::Suffix(text.get(2..).unwrap_or_default().to_owned()),
        Detected::Regexp => MatchKind::Tokens(tokens),
    })
}

/// The token and match type of a `**`, given whether it ends the pattern.
fn double_star(at_end: bool, detected: Detected) -> (Option<Token>, Detected) {
    match (at_end, detected) {
        (true, Detected::Exact) => (None, Detected::Prefix),
        (true, _) => (Some(Token::AnyRest), Detected::Regexp),
        (false, _) => (Some(Token::OptionalDirs), Detected::Regexp),
    }
}

/// Parses a class whose `[` is just before `start`, with Go `filepath.Match`'s rules.
fn parse_class(chars: &[char], start: usize) -> Result<(CharClass, usize), String> {
    let mut i = start;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((CharClass { negated, ranges }, i + 1));
        }
        let (lo, next) = class_char(chars, i)?;
        i = next;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            (hi, i) = class_char(chars, i + 1)?;
        }
        // Go's Match accepts `[z-a]`, but moby's regexp then fails to compile
        // on every match: reject it up front.
        if lo > hi {
            return Err(format!("invalid character class range {lo}-{hi}"));
        }
        ranges.push((lo, hi));
    }
}

/// One possibly escaped character of a class (Go's `getEsc`).
fn class_char(chars: &[char], start: usize) -> Result<(char, usize), String> {
    let mut i = start;
    match chars.get(i) {
        None => return Err("unclosed character class '['".to_owned()),
        Some('-' | ']') => return Err("misplaced '-' or ']' in character class".to_owned()),
        Some('\\') => i += 1,
        Some(_) => {}
    }
    let c = *chars.get(i).ok_or("unclosed character class '['")?;
    if i + 1 >= chars.len() {
        return Err("unclosed character class '['".to_owned());
    }
    Ok((c, i + 1))
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            MatchKind::Exact => path == self.text,
            MatchKind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            MatchKind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|bare| path == bare)
            }
            MatchKind::Tokens(tokens) => match_tokens(tokens, path),
        }
    }
}

/// Runs the anchored regexp as a set of reachable positions: linear in the
/// path per token, so no pattern can make matching blow up.
fn match_tokens(tokens: &[Token], path: &str) -> bool {
    let chars: Vec<char> = path.chars().collect();
    let n = chars.len();
    let mut reach = vec![false; n + 1];
    reach[0] = true;
    for token in tokens {
        let mut next = vec![false; n + 1];
        match token {
            Token::StartAnchor => next[0] = reach[0],
            Token::Literal(want) => step_one(&reach, &mut next, &chars, |c| c == *want),
            Token::OneNotSlash => step_one(&reach, &mut next, &chars, |c| c != '/'),
            Token::Class(class) => step_one(&reach, &mut next, &chars, |c| class.contains(c)),
            Token::RunNotSlash => step_run(&reach, &mut next, &chars, |c| c != '/'),
            // Go's regexp `.` does not match a newline.
            Token::AnyRest => step_run(&reach, &mut next, &chars, |c| c != '\n'),
            Token::OptionalDirs => step_optional_dirs(&reach, &mut next, &chars),
        }
        if !next.contains(&true) {
            return false;
        }
        reach = next;
    }
    reach[n]
}

fn step_one(reach: &[bool], next: &mut [bool], chars: &[char], ok: impl Fn(char) -> bool) {
    for (p, &c) in chars.iter().enumerate() {
        if reach[p] && ok(c) {
            next[p + 1] = true;
        }
    }
}

fn step_run(reach: &[bool], next: &mut [bool], chars: &[char], ok: impl Fn(char) -> bool) {
    next[0] = reach[0];
    for (p, &c) in chars.iter().enumerate() {
        next[p + 1] = reach[p + 1] || (next[p] && ok(c));
    }
}

/// `(.*/)?`: stay, or consume newline-free text that ends with a `/`.
fn step_optional_dirs(reach: &[bool], next: &mut [bool], chars: &[char]) {
    let mut running = false;
    for (p, &c) in chars.iter().enumerate() {
        next[p] |= reach[p];
        running = (running || reach[p]) && c != '\n';
        if running && c == '/' {
            next[p + 1] = true;
        }
    }
    let n = chars.len();
    next[n] |= reach[n];
}

/// What the walk knows about one directory.
#[derive(Debug)]
struct DirState {
    path: String,
    /// Per-pattern results that everything under the directory inherits.
    results: Vec<bool>,
    /// The directory itself is left out.
    excluded: bool,
    /// Everything under the directory is left out (moby's `filepath.SkipDir`).
    pruned: bool,
}

/// The chain of directories above the current path, as moby's walker keeps it.
///
/// An archive lists a directory before its contents, so a stack suffices; a
/// directory the archive does not list is worked out from its path.
#[derive(Debug, Default)]
struct Walk {
    dirs: Vec<DirState>,
}

impl Walk {
    /// Whether `path` is left out; a directory is remembered for what follows it.
    fn excluded(&mut self, ignore: &DockerIgnore, path: &str, is_dir: bool) -> bool {
        self.enter_parents(ignore, path);
        let state = self.visit(ignore, path);
        let excluded = state.excluded;
        if is_dir {
            self.dirs.push(state);
        }
        excluded
    }

    fn enter_parents(&mut self, ignore: &DockerIgnore, path: &str) {
        let kept = self
            .dirs
            .iter()
            .take_while(|dir| is_under(path, &dir.path))
            .count();
        self.dirs.truncate(kept);
        let parents: Vec<&str> = path.match_indices('/').map(|(at, _)| &path[..at]).collect();
        for parent in parents.into_iter().skip(kept) {
            let state = self.visit(ignore, parent);
            self.dirs.push(state);
        }
    }

    /// Evaluates `path` below the directory on top of the stack.
    fn visit(&self, ignore: &DockerIgnore, path: &str) -> DirState {
        let parent = self.dirs.last();
        if parent.is_some_and(|dir| dir.pruned) {
            return DirState {
                path: path.to_owned(),
                results: Vec::new(),
                excluded: true,
                pruned: true,
            };
        }
        let (excluded, results) = ignore.evaluate(path, parent.map(|dir| dir.results.as_slice()));
        DirState {
            path: path.to_owned(),
            results,
            excluded,
            pruned: excluded && !ignore.has_exception_under(path),
        }
    }
}

/// Whether `path` lies strictly under the directory `dir`.
fn is_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Where the build context lies in the repository, and which Dockerfile it uses.
#[derive(Debug, Clone, Copy)]
pub struct ContextSpec<'a> {
    /// The context directory inside the repository: `"."` or `"sub/dir"`.
    pub context: &'a str,
    /// The Dockerfile's path from the repository root, e.g. `"Dockerfile"` or
    /// `"docker/web.Dockerfile"`.
    pub dockerfile: &'a str,
    /// Instructions appended to the Dockerfile as sent (Longin's `LABEL` line: one
    /// step, where the engine's `labels` option costs a step, about a second, per
    /// label on the legacy builder). Empty: sent as it is.
    pub dockerfile_suffix: &'a str,
}

/// What [`write_context`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSummary {
    /// Regular files and symlinks written (directories are not counted).
    pub files: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
    /// The Dockerfile's path relative to the context, for the engine's `dockerfile` build option.
    pub dockerfile: String,
}

/// Reads the repository tar from `repo`, writes the context tar to `out`.
///
/// Entries under `spec.context` are re-rooted at it and filtered by its
/// `.dockerignore`; directories, regular files and symlinks keep their mode,
/// mtime and (for symlinks) target, owners become 0:0. A `pax_global_header` is
/// dropped. On error, what was written to `out` must be thrown away.
///
/// Entries that git lists before `.dockerignore` (such as `.a`) are held in
/// memory until it is known, and they count against `max_bytes` while held,
/// even if the ignore file then drops them: memory stays bounded by the limit.
///
/// # Errors
/// [`ContextError::UnsafePath`] for an absolute or `..` path in the spec or the
/// archive, [`ContextError::DockerfileOutsideContext`],
/// [`ContextError::MissingDockerfile`], [`ContextError::Pattern`] for a bad
/// `.dockerignore`, [`ContextError::TooLarge`] when the files exceed
/// `max_bytes`, [`ContextError::UnsupportedEntry`] for entry types git does not
/// produce, [`ContextError::Io`] when reading or writing fails.
pub fn write_context<R: Read, W: Write>(
    repo: R,
    spec: &ContextSpec,
    max_bytes: u64,
    out: W,
) -> Result<ContextSummary, ContextError> {
    let layout = Layout::new(spec)?;
    let mut writer = ContextWriter::new(&layout, max_bytes, out, spec.dockerfile_suffix);
    let mut archive = Archive::new(repo);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if let Some(item) = layout.item(&entry)? {
            writer.accept(item, &mut entry)?;
        }
    }
    writer.finish(spec)
}

/// The validated spec: where the context starts and its Dockerfile within it.
#[derive(Debug)]
struct Layout {
    /// The context directory, `""` for the repository root.
    context: String,
    /// The Dockerfile relative to the context.
    dockerfile: String,
}

impl Layout {
    fn new(spec: &ContextSpec) -> Result<Self, ContextError> {
        let context = safe_path(spec.context)?;
        let dockerfile = safe_path(spec.dockerfile)?;
        let relative = if context.is_empty() {
            Some(dockerfile.as_str())
        } else {
            dockerfile
                .strip_prefix(context.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
        };
        let Some(relative) = relative else {
            return Err(ContextError::DockerfileOutsideContext {
                dockerfile: spec.dockerfile.to_owned(),
                context: spec.context.to_owned(),
            });
        };
        if relative.is_empty() {
            return Err(ContextError::MissingDockerfile {
                path: spec.dockerfile.to_owned(),
            });
        }
        Ok(Self {
            dockerfile: relative.to_owned(),
            context,
        })
    }

    /// The entry as an item of the context, or `None` when it is not part of it.
    fn item<R: Read>(&self, entry: &Entry<'_, R>) -> Result<Option<Item>, ContextError> {
        let header = entry.header();
        let entry_type = header.entry_type();
        if entry_type.is_pax_global_extensions() || entry_type.is_pax_local_extensions() {
            return Ok(None);
        }
        let raw = entry.path_bytes();
        let path = std::str::from_utf8(&raw).map_err(|_| ContextError::UnsafePath {
            path: String::from_utf8_lossy(&raw).into_owned(),
            reason: "not UTF-8",
        })?;
        let path = safe_path(path)?;
        let Some(rel) = self.relative(&path) else {
            return Ok(None);
        };
        let kind = if entry_type.is_dir() {
            Kind::Dir
        } else if entry_type.is_file() || entry_type.is_contiguous() {
            Kind::File { size: entry.size() }
        } else if entry_type.is_symlink() {
            let target = entry.link_name_bytes().unwrap_or_default().into_owned();
            Kind::Symlink { target }
        } else {
            return Err(ContextError::UnsupportedEntry {
                path,
                reason: "not a file, directory or symlink",
            });
        };
        let mode = header.mode()?;
        let mtime = header.mtime()?;
        Ok(Some(Item {
            rel: rel.to_owned(),
            kind,
            mode,
            mtime,
        }))
    }

    /// `path` relative to the context, or `None` outside it (or for the context itself).
    fn relative<'p>(&self, path: &'p str) -> Option<&'p str> {
        if path.is_empty() {
            return None;
        }
        if self.context.is_empty() {
            return Some(path);
        }
        path.strip_prefix(self.context.as_str())?
            .strip_prefix('/')
            .filter(|rest| !rest.is_empty())
    }
}

/// `path` with empty and `.` components dropped, refusing what could escape.
fn safe_path(path: &str) -> Result<String, ContextError> {
    let unsafe_path = |reason| ContextError::UnsafePath {
        path: path.to_owned(),
        reason,
    };
    if path.starts_with('/') {
        return Err(unsafe_path("absolute path"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(unsafe_path("`..` component")),
            _ => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// One entry of the context, with its path relative to the context root.
#[derive(Debug)]
struct Item {
    rel: String,
    kind: Kind,
    mode: u32,
    mtime: u64,
}

#[derive(Debug)]
enum Kind {
    Dir,
    File { size: u64 },
    Symlink { target: Vec<u8> },
}

impl Item {
    fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir)
    }

    /// Whether git lists this entry before a `.dockerignore` beside it.
    ///
    /// git archive walks each tree in git's order: names compared byte-wise,
    /// a directory as if its name ended in `/`, its contents right after it.
    /// Within the context that is the byte order of the relative paths with
    /// `/` after directories, so once an entry sorts after `.dockerignore` the
    /// ignore file can no longer come.
    fn sorts_before_dockerignore(&self) -> bool {
        if self.is_dir() {
            format!("{}/", self.rel).as_str() < DOCKERIGNORE
        } else {
            self.rel.as_str() < DOCKERIGNORE
        }
    }
}

/// Entries held while the context's `.dockerignore` is still unknown, or the matcher once it is.
///
/// The archive is a stream, so it cannot be read twice to find the ignore file
/// first. git's order puts it early but not first — `.a`, `.docker/…`, names
/// starting with a space, `!` or `-` come before it — so only those entries are
/// held, and everything from the first entry after it on is streamed.
#[derive(Debug)]
enum Stage {
    Buffering {
        items: Vec<(Item, Vec<u8>)>,
        bytes: u64,
    },
    Streaming {
        ignore: DockerIgnore,
        walk: Walk,
    },
}

/// Filters items into the output tar.
struct ContextWriter<'a, W: Write> {
    layout: &'a Layout,
    stage: Stage,
    sink: Sink<W>,
    dockerfile_seen: bool,
}

impl<'a, W: Write> ContextWriter<'a, W> {
    fn new(layout: &'a Layout, max_bytes: u64, out: W, suffix: &str) -> Self {
        Self {
            layout,
            stage: Stage::Buffering {
                items: Vec::new(),
                bytes: 0,
            },
            sink: Sink {
                out: Builder::new(out),
                max_bytes,
                files: 0,
                bytes: 0,
                dockerfile: layout.dockerfile.clone(),
                suffix: suffix.to_owned(),
            },
            dockerfile_seen: false,
        }
    }

    fn accept(&mut self, item: Item, data: &mut dyn Read) -> Result<(), ContextError> {
        if item.rel == self.layout.dockerfile && !item.is_dir() {
            self.dockerfile_seen = true;
        }
        let buffering = matches!(self.stage, Stage::Buffering { .. });
        if item.rel == DOCKERIGNORE {
            if !buffering {
                // Only an archive out of git's order gets here; going on would
                // have sent entries the ignore file may exclude.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "`.dockerignore` after entries that sort after it: archive not in git order",
                )
                .into());
            }
            return self.accept_dockerignore(item, data);
        }
        if buffering && item.sorts_before_dockerignore() {
            return self.hold(item, data);
        }
        if buffering {
            self.start_streaming(DockerIgnore::default())?;
        }
        self.filter(&item, data)
    }

    fn accept_dockerignore(&mut self, item: Item, data: &mut dyn Read) -> Result<(), ContextError> {
        let Kind::File { size } = item.kind else {
            return Err(ContextError::UnsupportedEntry {
                path: item.rel,
                reason: "`.dockerignore` must be a regular file",
            });
        };
        if size > self.sink.max_bytes {
            return Err(ContextError::TooLarge {
                limit: self.sink.max_bytes,
            });
        }
        let mut text = Vec::new();
        data.take(size).read_to_end(&mut text)?;
        let text = std::str::from_utf8(&text).map_err(|_| ContextError::Pattern {
            pattern: DOCKERIGNORE.to_owned(),
            reason: "not valid UTF-8".to_owned(),
        })?;
        let ignore = DockerIgnore::parse(text)?.with_build_files(&self.layout.dockerfile);
        self.start_streaming(ignore)?;
        self.sink.emit(&item, &mut text.as_bytes())
    }

    fn hold(&mut self, item: Item, data: &mut dyn Read) -> Result<(), ContextError> {
        let Stage::Buffering { items, bytes } = &mut self.stage else {
            return Ok(());
        };
        let mut content = Vec::new();
        if let Kind::File { size } = item.kind {
            *bytes = bytes.saturating_add(size);
            if *bytes > self.sink.max_bytes {
                return Err(ContextError::TooLarge {
                    limit: self.sink.max_bytes,
                });
            }
            data.take(size).read_to_end(&mut content)?;
        }
        items.push((item, content));
        Ok(())
    }

    /// Fixes the matcher and sends what was held, filtered.
    fn start_streaming(&mut self, ignore: DockerIgnore) -> Result<(), ContextError> {
        let stage = Stage::Streaming {
            ignore,
            walk: Walk::default(),
        };
        if let Stage::Buffering { items, .. } = std::mem::replace(&mut self.stage, stage) {
            for (item, content) in items {
                self.filter(&item, &mut content.as_slice())?;
            }
        }
        Ok(())
    }

    fn filter(&mut self, item: &Item, data: &mut dyn Read) -> Result<(), ContextError> {
        let Stage::Streaming { ignore, walk } = &mut self.stage else {
            return Ok(());
        };
        let excluded = walk.excluded(ignore, &item.rel, item.is_dir());
        let build_file = item.rel == DOCKERIGNORE || item.rel == self.layout.dockerfile;
        if excluded && !build_file {
            return Ok(());
        }
        self.sink.emit(item, data)
    }

    fn finish(mut self, spec: &ContextSpec) -> Result<ContextSummary, ContextError> {
        if matches!(self.stage, Stage::Buffering { .. }) {
            self.start_streaming(DockerIgnore::default())?;
        }
        if !self.dockerfile_seen {
            return Err(ContextError::MissingDockerfile {
                path: spec.dockerfile.to_owned(),
            });
        }
        let mut out = self.sink.out.into_inner()?;
        out.flush()?;
        Ok(ContextSummary {
            files: self.sink.files,
            bytes: self.sink.bytes,
            dockerfile: self.layout.dockerfile.clone(),
        })
    }
}

/// The output tar and its running totals.
struct Sink<W: Write> {
    out: Builder<W>,
    max_bytes: u64,
    files: u64,
    bytes: u64,
    /// The Dockerfile (relative to the context) and what is appended to it.
    dockerfile: String,
    suffix: String,
}

/// The largest Dockerfile that gets a suffix (it is read whole to append it).
const MAX_DOCKERFILE: u64 = 1 << 20;

impl<W: Write> Sink<W> {
    fn emit(&mut self, item: &Item, data: &mut dyn Read) -> Result<(), ContextError> {
        let mut header = Header::new_gnu();
        header.set_mode(item.mode);
        header.set_mtime(item.mtime);
        header.set_uid(0);
        header.set_gid(0);
        match &item.kind {
            Kind::Dir => {
                header.set_entry_type(EntryType::Directory);
                header.set_size(0);
                self.out
                    .append_data(&mut header, format!("{}/", item.rel), io::empty())?;
            }
            Kind::File { size } if !self.suffix.is_empty() && item.rel == self.dockerfile => {
                if *size > MAX_DOCKERFILE {
                    return Err(ContextError::UnsupportedEntry {
                        path: item.rel.clone(),
                        reason: "a Dockerfile larger than 1 MiB",
                    });
                }
                let mut text = Vec::new();
                data.take(*size).read_to_end(&mut text)?;
                if !text.ends_with(b"\n") {
                    text.push(b'\n');
                }
                text.extend_from_slice(self.suffix.as_bytes());
                header.set_entry_type(EntryType::Regular);
                header.set_size(text.len() as u64);
                self.bytes = self.bytes.saturating_add(text.len() as u64);
                self.out.append_data(&mut header, &item.rel, &text[..])?;
                self.files += 1;
            }
            Kind::Symlink { .. } if !self.suffix.is_empty() && item.rel == self.dockerfile => {
                return Err(ContextError::UnsupportedEntry {
                    path: item.rel.clone(),
                    reason: "a Dockerfile that is a symbolic link",
                });
            }
            Kind::File { size } => {
                self.bytes = self.bytes.saturating_add(*size);
                if self.bytes > self.max_bytes {
                    return Err(ContextError::TooLarge {
                        limit: self.max_bytes,
                    });
                }
                header.set_entry_type(EntryType::Regular);
                header.set_size(*size);
                self.out
                    .append_data(&mut header, &item.rel, data.take(*size))?;
                self.files += 1;
            }
            Kind::Symlink { target } => {
                header.set_entry_type(EntryType::Symlink);
                header.set_size(0);
                self.append_symlink(&mut header, &item.rel, target)?;
                self.files += 1;
            }
        }
        Ok(())
    }

    /// Writes the target byte for byte: the tar crate's path setter would normalise it.
    fn append_symlink(
        &mut self,
        header: &mut Header,
        rel: &str,
        target: &[u8],
    ) -> Result<(), ContextError> {
        if target.len() <= HEADER_LINK_MAX {
            header.set_link_name_literal(target)?;
            self.out.append_data(header, rel, io::empty())?;
            return Ok(());
        }
        // A long target goes into a GNU long-link record, which keeps its bytes.
        let target = std::str::from_utf8(target).map_err(|_| ContextError::UnsafePath {
            path: rel.to_owned(),
            reason: "symlink target not UTF-8",
        })?;
        self.out.append_link(header, rel, target)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry of a simulated `git archive`.
    enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a str),
        Exec(&'a str, &'a str),
        Link(&'a str, &'a str),
        /// A regular file whose name bypasses the tar crate's path checks.
        RawName(&'a [u8]),
    }

    /// A tar shaped like `git archive --format=tar`: a pax global header with
    /// the commit id first, then the entries in the order given.
    fn git_archive(entries: &[E]) -> Vec<u8> {
        let mut builder = Builder::new(Vec::new());
        let record = b"52 comment=0123456789abcdef0123456789abcdef01234567\n";
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::XGlobalHeader);
        header.set_size(record.len() as u64);
        header.set_mode(0o666);
        builder
            .append_data(&mut header, "pax_global_header", &record[..])
            .unwrap();
        for entry in entries {
            let mut header = Header::new_ustar();
            header.set_mtime(1_700_000_000);
            header.set_uid(1000);
            header.set_gid(1000);
            match entry {
                E::Dir(path) => {
                    header.set_entry_type(EntryType::Directory);
                    header.set_mode(0o775);
                    header.set_size(0);
                    builder
                        .append_data(&mut header, format!("{path}/"), io::empty())
                        .unwrap();
                }
                E::File(path, text) | E::Exec(path, text) => {
                    header.set_entry_type(EntryType::Regular);
                    header.set_mode(if matches!(entry, E::Exec(..)) {
                        0o775
                    } else {
                        0o664
                    });
                    header.set_size(text.len() as u64);
                    builder
                        .append_data(&mut header, path, text.as_bytes())
                        .unwrap();
                }
                E::Link(path, target) => {
                    header.set_entry_type(EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    // Literal, so the fixture keeps targets byte for byte too.
                    if target.len() <= HEADER_LINK_MAX {
                        header.set_link_name_literal(target).unwrap();
                        builder.append_data(&mut header, path, io::empty()).unwrap();
                    } else {
                        builder.append_link(&mut header, path, target).unwrap();
                    }
                }
                E::RawName(name) => {
                    header.as_old_mut().name[..name.len()].copy_from_slice(name);
                    header.set_entry_type(EntryType::Regular);
                    header.set_mode(0o664);
                    header.set_size(1);
                    header.set_cksum();
                    builder.append(&header, &b"x"[..]).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    /// An entry of the produced context.
    #[derive(Debug)]
    struct Got {
        path: String,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        link: Option<String>,
        data: String,
    }

    fn read_context(tar: &[u8]) -> Vec<Got> {
        let mut archive = Archive::new(tar);
        let mut got = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut data = String::new();
            entry.read_to_string(&mut data).unwrap();
            let header = entry.header();
            got.push(Got {
                path: String::from_utf8(entry.path_bytes().into_owned()).unwrap(),
                mode: header.mode().unwrap(),
                uid: header.uid().unwrap(),
                gid: header.gid().unwrap(),
                mtime: header.mtime().unwrap(),
                link: entry
                    .link_name_bytes()
                    .map(|l| String::from_utf8(l.into_owned()).unwrap()),
                data,
            });
        }
        got
    }

    fn context(
        entries: &[E],
        context: &str,
        dockerfile: &str,
    ) -> Result<(ContextSummary, Vec<Got>), ContextError> {
        context_limited(entries, context, dockerfile, 1 << 20)
    }

    fn context_limited(
        entries: &[E],
        context: &str,
        dockerfile: &str,
        max_bytes: u64,
    ) -> Result<(ContextSummary, Vec<Got>), ContextError> {
        let repo = git_archive(entries);
        let mut out = Vec::new();
        let spec = ContextSpec {
            context,
            dockerfile,
            dockerfile_suffix: "",
        };
        let summary = write_context(repo.as_slice(), &spec, max_bytes, &mut out)?;
        Ok((summary, read_context(&out)))
    }

    fn paths(got: &[Got]) -> Vec<&str> {
        got.iter().map(|g| g.path.as_str()).collect()
    }

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn star_log_matches_only_at_the_top() {
        let di = ignore("*.log\n");
        assert!(di.is_excluded("a.log"));
        assert!(!di.is_excluded("dir/a.log"));
        assert!(!di.is_excluded("a.log.txt"));
    }

    #[test]
    fn double_star_node_modules_matches_at_any_depth() {
        let di = ignore("**/node_modules\n");
        assert!(di.is_excluded("node_modules"));
        assert!(di.is_excluded("node_modules/pkg/index.js"));
        assert!(di.is_excluded("web/app/node_modules"));
        assert!(di.is_excluded("web/app/node_modules/x.js"));
        assert!(!di.is_excluded("web/my_node_modules"));
    }

    #[test]
    fn bang_re_includes_and_last_match_wins() {
        let di = ignore("*.log\n!keep.log\n");
        assert!(di.is_excluded("a.log"));
        assert!(!di.is_excluded("keep.log"));
        let di = ignore("!keep.log\n*.log\n");
        assert!(di.is_excluded("keep.log"));
    }

    #[test]
    fn directory_pattern_excludes_its_subtree() {
        let di = ignore("docs\n");
        assert!(di.is_excluded("docs"));
        assert!(di.is_excluded("docs/a/b/c.md"));
        assert!(!di.is_excluded("docs2/x"));
        assert!(!di.is_excluded("src/docs"));
    }

    #[test]
    fn re_include_inside_an_excluded_directory() {
        let di = ignore("docs\n!docs/keep.md\n");
        assert!(di.is_excluded("docs"));
        assert!(!di.is_excluded("docs/keep.md"));
        assert!(di.is_excluded("docs/other.md"));
        // moby's walker skips a directory unless a `!` pattern's text starts
        // with it: `**/*.md` does not, so nothing under docs comes back.
        let di = ignore("docs\n!**/*.md\n");
        assert!(di.is_excluded("docs/keep.md"));
        assert!(!di.is_excluded("src/readme.md"));
    }

    #[test]
    fn leading_slash_comments_blanks_bom_and_crlf() {
        let di =
            ignore("\u{feff}/secret.txt\r\n# *.rs\r\n\r\n   \n #not-a-comment\n  spaced.txt  \n");
        assert!(di.is_excluded("secret.txt"));
        assert!(!di.is_excluded("main.rs"));
        assert!(di.is_excluded("#not-a-comment"));
        assert!(di.is_excluded("spaced.txt"));
        assert_eq!(di.patterns.len(), 3);
    }

    #[test]
    fn patterns_are_cleaned() {
        let di = ignore("./a/../b\nc//d/\n! ./e\n*\n");
        assert_eq!(
            di.patterns
                .iter()
                .map(|p| (p.exclusion, p.text.as_str()))
                .collect::<Vec<_>>(),
            [(false, "b"), (false, "c/d"), (true, "e"), (false, "*")]
        );
        assert!(di.is_excluded("c/d/x"));
    }

    #[test]
    fn build_double_star_excludes_the_contents_not_the_directory() {
        let di = ignore("build/**\n");
        assert!(!di.is_excluded("build"));
        assert!(di.is_excluded("build/out.bin"));
        assert!(di.is_excluded("build/a/b"));
        assert!(!di.is_excluded("builder/x"));
    }

    #[test]
    fn wildcards_classes_and_escapes() {
        let di = ignore("file?.txt\nimg[0-9].png\nv[!a].txt\n[^a-c]x\nlit\\*\n");
        assert!(di.is_excluded("file1.txt"));
        assert!(!di.is_excluded("file10.txt"));
        assert!(di.is_excluded("img7.png"));
        assert!(!di.is_excluded("imgx.png"));
        assert!(di.is_excluded("v!.txt")); // `!` is no negation in Go's Match
        assert!(di.is_excluded("dx"));
        assert!(!di.is_excluded("bx"));
        assert!(di.is_excluded("lit*"));
        assert!(!di.is_excluded("litx"));
    }

    #[test]
    fn double_star_in_the_middle_and_moby_suffix_quirk() {
        let di = ignore("a/**/z\n");
        assert!(di.is_excluded("a/z"));
        assert!(di.is_excluded("a/b/c/z"));
        assert!(!di.is_excluded("a/bz"));
        // `**x` is a plain suffix match in moby, so it also matches `yx`.
        let di = ignore("**.tmp\n");
        assert!(di.is_excluded("x.tmp"));
        assert!(di.is_excluded("deep/er/x.tmp"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["[abc", "a\\", "!", "[]", "[a-]", "[z-a]", "x[^]"] {
            match DockerIgnore::parse(&format!("ok\n{bad}\n")) {
                Err(ContextError::Pattern { pattern, reason }) => {
                    assert_eq!(pattern, bad);
                    assert!(!reason.is_empty());
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn whole_context_is_filtered_like_the_cli() {
        let ignore_file =
            "# build outputs\n*.log\n!keep.log\n**/node_modules\nbuild/**\n/secret.txt\ndocs\n";
        let entries = [
            E::File(".dockerignore", ignore_file),
            E::File("Dockerfile", "FROM scratch\n"),
            E::File("a.log", "noise"),
            E::Dir("app"),
            E::Dir("app/node_modules"),
            E::File("app/node_modules/x.js", "x"),
            E::File("app/server.log", "kept: not at the top"),
            E::Dir("build"),
            E::File("build/out.bin", "bin"),
            E::Dir("docs"),
            E::File("docs/a.md", "a"),
            E::File("keep.log", "kept"),
            E::Dir("node_modules"),
            E::File("node_modules/y.js", "y"),
            E::File("secret.txt", "hunter2"),
            E::Dir("src"),
            E::Exec("src/run.sh", "#!/bin/sh\n"),
            E::Link("src/current", "../build/out.bin"),
        ];
        let (summary, got) = context(&entries, ".", "Dockerfile").unwrap();
        assert_eq!(
            paths(&got),
            [
                ".dockerignore",
                "Dockerfile",
                "app/",
                "app/server.log",
                "build/",
                "keep.log",
                "src/",
                "src/run.sh",
                "src/current"
            ]
        );
        assert_eq!(summary.dockerfile, "Dockerfile");
        assert_eq!(summary.files, 6);
        let expected_bytes = ignore_file.len()
            + "FROM scratch\n".len()
            + "kept: not at the top".len()
            + "kept".len()
            + "#!/bin/sh\n".len();
        assert_eq!(summary.bytes, expected_bytes as u64);
    }

    #[test]
    fn modes_mtime_and_link_targets_are_kept_owners_reset() {
        let entries = [
            E::File("Dockerfile", "FROM scratch\n"),
            E::Dir("bin"),
            E::Exec("bin/run", "#!/bin/sh\n"),
            E::Link("bin/up", "../x/./y//z"),
            E::Link("bin/far", &"t/".repeat(80)),
        ];
        let (_, got) = context(&entries, ".", "Dockerfile").unwrap();
        assert_eq!(
            paths(&got),
            ["Dockerfile", "bin/", "bin/run", "bin/up", "bin/far"]
        );
        assert!(
            got.iter()
                .all(|g| g.uid == 0 && g.gid == 0 && g.mtime == 1_700_000_000)
        );
        assert_eq!(got[1].mode, 0o775);
        assert_eq!(got[2].mode, 0o775);
        assert_eq!(got[2].data, "#!/bin/sh\n");
        assert_eq!(got[0].mode, 0o664);
        assert_eq!(got[3].link.as_deref(), Some("../x/./y//z"));
        assert_eq!(got[4].link, Some("t/".repeat(80)));
    }

    #[test]
    fn subdirectory_context_is_re_rooted() {
        let entries = [
            E::File(".dockerignore", "*\n"), // the repository's, not the context's
            E::Dir("api"),
            E::File("api/Dockerfile", "FROM api\n"),
            E::Dir("web"),
            E::File("web/.dockerignore", "*.tmp\n"),
            E::Dir("web/docker"),
            E::File("web/docker/web.Dockerfile", "FROM web\n"),
            E::File("web/index.html", "<h1>hi</h1>"),
            E::File("web/x.tmp", "tmp"),
            E::File("zz", "outside"),
        ];
        let (summary, got) = context(&entries, "web", "web/docker/web.Dockerfile").unwrap();
        assert_eq!(
            paths(&got),
            [
                ".dockerignore",
                "docker/",
                "docker/web.Dockerfile",
                "index.html"
            ]
        );
        assert_eq!(summary.dockerfile, "docker/web.Dockerfile");
        assert_eq!(got[2].data, "FROM web\n");
    }

    #[test]
    fn nested_context_and_spec_paths_are_normalised() {
        let entries = [
            E::Dir("services"),
            E::Dir("services/web"),
            E::File("services/web/Dockerfile", "FROM web\n"),
            E::File("services/webapp", "sibling, not inside"),
        ];
        let (summary, got) =
            context(&entries, "./services//web/", "services/web/./Dockerfile").unwrap();
        assert_eq!(paths(&got), ["Dockerfile"]);
        assert_eq!(summary.dockerfile, "Dockerfile");
    }

    #[test]
    fn dockerfile_outside_the_context_is_refused() {
        let entries = [
            E::File("Dockerfile", "FROM x\n"),
            E::Dir("web"),
            E::File("web/a", "a"),
        ];
        let err = context(&entries, "web", "Dockerfile").unwrap_err();
        assert!(
            matches!(err, ContextError::DockerfileOutsideContext { .. }),
            "{err:?}"
        );
        let err = context(&entries, "web", "webapp/Dockerfile").unwrap_err();
        assert!(
            matches!(err, ContextError::DockerfileOutsideContext { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn missing_dockerfile_is_reported() {
        let entries = [E::File("Containerfile", "FROM x\n"), E::Dir("Dockerfile.d")];
        let err = context(&entries, ".", "Dockerfile").unwrap_err();
        assert!(
            matches!(err, ContextError::MissingDockerfile { ref path } if path == "Dockerfile"),
            "{err:?}"
        );
        let err = context(&entries, ".", "Dockerfile.d").unwrap_err();
        assert!(
            matches!(err, ContextError::MissingDockerfile { .. }),
            "{err:?}"
        );
        let err = context(&entries, ".", ".").unwrap_err();
        assert!(
            matches!(err, ContextError::MissingDockerfile { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn parent_dir_and_absolute_paths_are_refused() {
        for name in [&b"a/../../etc/passwd"[..], b"../evil", b"/etc/passwd"] {
            let entries = [E::File("Dockerfile", "FROM x\n"), E::RawName(name)];
            let err = context(&entries, ".", "Dockerfile").unwrap_err();
            assert!(matches!(err, ContextError::UnsafePath { .. }), "{err:?}");
        }
        let entries = [E::File("Dockerfile", "FROM x\n")];
        for (ctx, dockerfile) in [
            ("..", "Dockerfile"),
            ("/srv", "Dockerfile"),
            (".", "../Dockerfile"),
            (".", "/Dockerfile"),
        ] {
            let err = context(&entries, ctx, dockerfile).unwrap_err();
            assert!(
                matches!(err, ContextError::UnsafePath { .. }),
                "{ctx} {dockerfile}: {err:?}"
            );
        }
    }

    #[test]
    fn size_limit_counts_sent_files_only() {
        let big = "x".repeat(600);
        let entries = [
            E::File(".dockerignore", "big\n"),
            E::File("Dockerfile", "FROM x\n"),
            E::File("big", &big),
            E::File("small", "12345"),
        ];
        let (summary, _) = context_limited(&entries, ".", "Dockerfile", 100).unwrap();
        assert_eq!(summary.bytes, ("big\n".len() + "FROM x\n".len() + 5) as u64);
        let entries = [E::File("Dockerfile", "FROM x\n"), E::File("big", &big)];
        let err = context_limited(&entries, ".", "Dockerfile", 100).unwrap_err();
        assert!(
            matches!(err, ContextError::TooLarge { limit: 100 }),
            "{err:?}"
        );
    }

    #[test]
    fn held_entries_count_against_the_limit() {
        let big = "x".repeat(600);
        let entries = [
            E::File(".big", &big),
            E::File(".dockerignore", ".big\n"),
            E::File("Dockerfile", "FROM x\n"),
        ];
        let err = context_limited(&entries, ".", "Dockerfile", 100).unwrap_err();
        assert!(
            matches!(err, ContextError::TooLarge { limit: 100 }),
            "{err:?}"
        );
        assert!(context_limited(&entries, ".", "Dockerfile", 1000).is_ok());
    }

    #[test]
    fn dockerfile_and_dockerignore_are_sent_even_if_ignored() {
        let entries = [
            E::File(".dockerignore", ".dockerignore\nDockerfile\n*\n"),
            E::File("Dockerfile", "FROM x\n"),
            E::File("other", "o"),
        ];
        let (_, got) = context(&entries, ".", "Dockerfile").unwrap();
        assert_eq!(paths(&got), [".dockerignore", "Dockerfile"]);
    }

    #[test]
    fn dockerfile_in_an_ignored_directory_is_still_sent_alone() {
        let entries = [
            E::File(".dockerignore", "docker\n"),
            E::Dir("docker"),
            E::File("docker/notes.txt", "n"),
            E::File("docker/web.Dockerfile", "FROM x\n"),
            E::File("main.go", "package main"),
        ];
        let (summary, got) = context(&entries, ".", "docker/web.Dockerfile").unwrap();
        assert_eq!(
            paths(&got),
            [".dockerignore", "docker/web.Dockerfile", "main.go"]
        );
        assert_eq!(summary.dockerfile, "docker/web.Dockerfile");
        // Also where the CLI's own check misses it: it compares `**/deploy`
        // (two segments) with `deploy/web` only, while the walk skips `deploy`.
        let entries = [
            E::File(".dockerignore", "**/deploy\n"),
            E::Dir("deploy"),
            E::Dir("deploy/web"),
            E::File("deploy/web/Dockerfile", "FROM x\n"),
            E::File("deploy/web/other", "o"),
        ];
        assert!(!ignore("**/deploy").legacy_matches("deploy/web/Dockerfile"));
        let (_, got) = context(&entries, ".", "deploy/web/Dockerfile").unwrap();
        assert_eq!(paths(&got), [".dockerignore", "deploy/web/Dockerfile"]);
    }

    #[test]
    fn dockerignore_after_earlier_entries_still_filters_them() {
        let entries = [
            E::File(" leading-space", "s"),
            E::File("-dash", "d"),
            E::File(".a", "a"),
            E::Dir(".docker"),
            E::File(".docker/config.json", "{\"auths\":{}}"),
            E::File(".b", "b"),
            E::File(".dockerignore", ".a\n.docker\n-*\n"),
            E::File(".dockerignore.bak", "bak"),
            E::File("Dockerfile", "FROM x\n"),
        ];
        let (_, got) = context(&entries, ".", "Dockerfile").unwrap();
        assert_eq!(
            paths(&got),
            [
                " leading-space",
                ".b",
                ".dockerignore",
                ".dockerignore.bak",
                "Dockerfile"
            ]
        );
        assert_eq!(got[1].data, "b");
    }

    #[test]
    fn the_suffix_is_appended_to_the_dockerfile_only() {
        let entries = [E::File("Dockerfile", "FROM x"), E::File("app.txt", "hi")];
        let repo = git_archive(&entries);
        let mut out = Vec::new();
        let spec = ContextSpec {
            context: ".",
            dockerfile: "Dockerfile",
            dockerfile_suffix: "LABEL \"a\"=\"b\"\n",
        };
        write_context(repo.as_slice(), &spec, 1000, &mut out).unwrap();
        let mut archive = tar::Archive::new(out.as_slice());
        let mut files = std::collections::BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            files.insert(path, text);
        }
        assert_eq!(files["Dockerfile"], "FROM x\nLABEL \"a\"=\"b\"\n");
        assert_eq!(files["app.txt"], "hi");
    }

    #[test]
    fn without_dockerignore_everything_is_sent() {
        let entries = [E::File(".a", "a"), E::File(".b", "b")];
        let repo = git_archive(&entries);
        let mut out = Vec::new();
        let spec = ContextSpec {
            context: ".",
            dockerfile: ".b",
            dockerfile_suffix: "",
        };
        let summary = write_context(repo.as_slice(), &spec, 100, &mut out).unwrap();
        assert_eq!(paths(&read_context(&out)), [".a", ".b"]);
        assert_eq!(
            summary,
            ContextSummary {
                files: 2,
                bytes: 2,
                dockerfile: ".b".to_owned()
            }
        );
    }

    #[test]
    fn dockerignore_out_of_git_order_is_an_error() {
        let entries = [
            E::File("Dockerfile", "FROM x\n"),
            E::File(".dockerignore", "secret\n"),
            E::File("secret", "s"),
        ];
        let err = context(&entries, ".", "Dockerfile").unwrap_err();
        assert!(
            matches!(err, ContextError::Io(ref e) if e.kind() == io::ErrorKind::InvalidData),
            "{err:?}"
        );
    }

    #[test]
    fn dockerignore_must_be_a_regular_file() {
        let entries = [
            E::Link(".dockerignore", "../elsewhere"),
            E::File("Dockerfile", "FROM x\n"),
        ];
        let err = context(&entries, ".", "Dockerfile").unwrap_err();
        assert!(
            matches!(err, ContextError::UnsupportedEntry { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn bad_dockerignore_in_the_archive_is_a_pattern_error() {
        let entries = [
            E::File(".dockerignore", "ok\n[oops\n"),
            E::File("Dockerfile", "FROM x\n"),
        ];
        let err = context(&entries, ".", "Dockerfile").unwrap_err();
        assert!(
            matches!(err, ContextError::Pattern { ref pattern, .. } if pattern == "[oops"),
            "{err:?}"
        );
    }
}
