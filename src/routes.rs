//! The compiled route table: what a request must present before MLflow may
//! serve it.
//!
//! MLflow's server routes a request in two tiers, and the table keeps both so
//! that it decides for the handler that will actually run:
//!
//! 1. **First match** (FastAPI's native routes under uvicorn). Routes are tried
//!    in the order they were registered; the first whose pattern *and* method
//!    match serves the request (Starlette's rule). A route that matches the path
//!    but not the method does not stop the search.
//! 2. **Most specific** (the Flask rules, and everything under gunicorn). The
//!    path is matched segment by segment as Werkzeug's state machine does: a
//!    static segment first, then the dynamic parts in Werkzeug's weight order,
//!    backtracking on failure; a rule whose method does not fit does not
//!    count. Two rules that tie exactly (same shape, same method) are a genuine
//!    ambiguity, and the stricter requirement wins.
//!
//! A (method, path) that neither tier knows needs MANAGE (`<unknown>`).
//!
//! # Patterns
//!
//! Flask `<x>`, `<string:x>`, `<path:x>` and FastAPI `{x}`, `{x:str}`,
//! `{x:path}` placeholders, anywhere in a segment. Each matches exactly what
//! its own router matches (Python `re` semantics, where `.` stops at a line
//! feed):
//!
//! | placeholder | router regex | here |
//! |---|---|---|
//! | `<x>`, `{x}` | `[^/]+` | one or more characters, no `/` (a line feed is allowed) |
//! | `<path:x>` | `[^/].*?` | a first character that is not `/`, then a run without a line feed; may hold `//` and end in `/` |
//! | `{x:path}` | `.*` | a run without a line feed, possibly empty |
//!
//! In the first-match tier the end of a pattern is Starlette's `$`, which also
//! accepts one trailing line feed; in the most-specific tier it is Werkzeug's
//! `\Z`. Other converters (`int`, `uuid`, converter arguments...) are refused:
//! matching them more loosely or more strictly than the router could hand a
//! request to the wrong entry. A pattern may not contain `//`. The empty
//! pattern `""` is the bare static prefix (`/prefix` without its slash).
//!
//! # Lookup
//!
//! The method is compared without regard to case, `HEAD` counts as `GET`, and
//! `*` in the table stands for any method. The static prefix is stripped; a
//! path outside it is unknown. The path must be the one the server routes on
//! (ASGI `scope["path"]`, WSGI `PATH_INFO`): percent-decoded, without the query
//! string, nothing else normalised (no dot segments removed, no slashes
//! merged). The table applies the one normalisation a router does itself:
//! Werkzeug collapses leading slashes, so the most-specific tier does too. A
//! lookup allocates nothing.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use crate::error::{Error, Result};
use crate::levels::Level;

/// The route name reported for a (method, path) that the table does not know.
pub const UNKNOWN_ROUTE: &str = "<unknown>";

/// What a request must present before a route may serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// Nothing: no credential is needed.
    Public,
    /// Any valid identity, even one with `NO_PERMISSIONS`.
    Authenticated,
    /// An identity with at least this level.
    Level(Level),
}

impl Requirement {
    /// The names a requirement is written with, for error messages.
    pub const NAMES: &'static str = "PUBLIC, AUTHENTICATED, READ, EDIT or MANAGE";

    /// Parses a requirement name (exact, upper case). `NO_PERMISSIONS` is not
    /// one: a route that any signed-in user may call is `AUTHENTICATED`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "PUBLIC" => Some(Self::Public),
            "AUTHENTICATED" => Some(Self::Authenticated),
            "NO_PERMISSIONS" => None,
            _ => Level::parse(name).map(Self::Level),
        }
    }

    /// The name used in the table, logs and responses.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Public => "PUBLIC",
            Self::Authenticated => "AUTHENTICATED",
            Self::Level(level) => level.as_str(),
        }
    }

    /// Whether an identity with `level` meets this requirement.
    #[must_use]
    pub fn is_met_by(self, level: Level) -> bool {
        match self {
            Self::Public | Self::Authenticated => true,
            Self::Level(needed) => level >= needed,
        }
    }

    /// The stricter of two requirements (`self` when they are equally strict).
    #[must_use]
    pub const fn strictest(self, other: Self) -> Self {
        if other.strictness() > self.strictness() {
            other
        } else {
            self
        }
    }

    const fn strictness(self) -> u8 {
        match self {
            Self::Public => 0,
            Self::Authenticated | Self::Level(Level::NoPermissions) => 1,
            Self::Level(Level::Read) => 2,
            Self::Level(Level::Edit) => 3,
            Self::Level(Level::Manage) => 4,
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry given to [`RouteTable::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec<'a> {
    /// An HTTP method, or `*` for any.
    pub method: &'a str,
    /// The pattern, relative to the static prefix.
    pub pattern: &'a str,
    /// What the route needs.
    pub requirement: Requirement,
    /// The name reported by lookups (an RPC or handler name).
    pub name: &'a str,
}

impl<'a> RouteSpec<'a> {
    /// Builds an entry from a requirement name.
    ///
    /// # Errors
    ///
    /// [`Error::RouteTable`] when `requirement` is not one of
    /// [`Requirement::NAMES`].
    pub fn parse(
        method: &'a str,
        pattern: &'a str,
        requirement: &str,
        name: &'a str,
    ) -> Result<Self> {
        let Some(requirement) = Requirement::parse(requirement) else {
            return Err(Error::RouteTable(format!(
                "route {method} {pattern:?}: unknown level {requirement:?}; expected {}",
                Requirement::NAMES
            )));
        };
        Ok(Self {
            method,
            pattern,
            requirement,
            name,
        })
    }
}

/// The answer of a lookup: what the route needs and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'t> {
    /// What the request must present.
    pub requirement: Requirement,
    /// The route's name, or [`UNKNOWN_ROUTE`].
    pub name: &'t str,
}

/// The compiled table. Immutable once built; lookups are `&self`.
#[derive(Debug)]
pub struct RouteTable {
    prefix: Box<str>,
    first: FirstMatchTier,
    specific: MostSpecificTier,
    names: Vec<Box<str>>,
    /// The answers for the fully static patterns, worked out when the table
    /// is built: most requests name an RPC path, and then a lookup is one
    /// hash instead of a walk through both tiers.
    resolved: TextMap<Vec<(Box<str>, Answer)>>,
}

/// What a lookup found: (requirement, name index), or nothing.
type Answer = Option<(Requirement, usize)>;

impl RouteTable {
    /// Compiles both tiers. `first_match` is tried first, in order; only when
    /// no entry there fits is `most_specific` consulted. Patterns are relative
    /// to `static_prefix` (`""`, or `/` followed by anything but a trailing
    /// `/`).
    ///
    /// # Errors
    ///
    /// [`Error::RouteTable`] naming the first bad entry (method, pattern) or a
    /// bad static prefix.
    pub fn new(
        first_match: &[RouteSpec<'_>],
        most_specific: &[RouteSpec<'_>],
        static_prefix: &str,
    ) -> Result<Self> {
        check_prefix(static_prefix)?;
        let mut table = Self {
            prefix: static_prefix.into(),
            first: FirstMatchTier::default(),
            specific: MostSpecificTier::default(),
            names: Vec::with_capacity(first_match.len() + most_specific.len()),
            resolved: TextMap::default(),
        };
        for spec in first_match {
            let (pieces, endpoint) = table.compile(spec)?;
            table.first.insert(pieces, endpoint);
        }
        for spec in most_specific {
            let (pieces, endpoint) = table.compile(spec)?;
            table.specific.insert(&pieces, endpoint);
        }
        table.specific.sort_by_weight();
        table.resolved = table.resolve_static(first_match.iter().chain(most_specific));
        Ok(table)
    }

    fn resolve_static<'s>(
        &self,
        specs: impl Iterator<Item = &'s RouteSpec<'s>>,
    ) -> TextMap<Vec<(Box<str>, Answer)>> {
        let mut resolved: TextMap<Vec<(Box<str>, Answer)>> = TextMap::default();
        for spec in specs {
            let Some(method) = normalise_method(spec.method).filter(|method| &**method != "*")
            else {
                continue;
            };
            if spec.pattern.contains(['<', '{']) {
                continue;
            }
            let answers = resolved.entry(spec.pattern.into()).or_default();
            if answers.iter().any(|(known, _)| *known == method) {
                continue;
            }
            if let Ok(found) = self.find_relative(&method, spec.pattern, &Budget::new()) {
                let answer = found.map(|endpoint| (endpoint.requirement, endpoint.name));
                answers.push((method, answer));
            }
        }
        resolved
    }

    /// What a request with this method and path needs.
    #[must_use]
    pub fn lookup(&self, method: &str, path: &str) -> Route<'_> {
        let method = if method.eq_ignore_ascii_case("HEAD") {
            "GET"
        } else {
            method
        };
        let answer = match self.resolved_answer(method, path) {
            Some(answer) => answer,
            // Out of budget: which route would serve is unknown, so MANAGE.
            None => self
                .find(method, path, &Budget::new())
                .unwrap_or(None)
                .map(|endpoint| (endpoint.requirement, endpoint.name)),
        };
        match answer {
            Some((requirement, name)) => Route {
                requirement,
                name: self.names.get(name).map_or(UNKNOWN_ROUTE, |name| name),
            },
            None => UNKNOWN,
        }
    }

    /// The answer worked out in advance for a fully static path, if any.
    fn resolved_answer(&self, method: &str, path: &str) -> Option<Answer> {
        if path.starts_with("//") {
            return None; // the tiers see different paths; see `werkzeug_path`
        }
        let answers = self.resolved.get(self.strip_prefix(path)?)?;
        answers
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(method))
            .map(|(_, answer)| *answer)
    }

    fn find(&self, method: &str, path: &str, budget: &Budget) -> Found<'_> {
        if path.starts_with("//") {
            if let Some(path) = self.strip_prefix(path) {
                if let Some(endpoint) = self.first.find(method, path, budget)? {
                    return Ok(Some(endpoint));
                }
            }
            return match self.strip_prefix(werkzeug_path(path)) {
                Some(path) => self.specific.find(method, path, budget),
                None => Ok(None),
            };
        }
        match self.strip_prefix(path) {
            Some(path) => self.find_relative(method, path, budget),
            None => Ok(None),
        }
    }

    /// Both tiers, for a path relative to the prefix that both see alike.
    fn find_relative(&self, method: &str, path: &str, budget: &Budget) -> Found<'_> {
        if let Some(endpoint) = self.first.find(method, path, budget)? {
            return Ok(Some(endpoint));
        }
        self.specific.find(method, path, budget)
    }

    /// The number of entries the table was built from.
    #[must_use]
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the table was built from no entries at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The static prefix the table strips.
    #[must_use]
    pub fn static_prefix(&self) -> &str {
        &self.prefix
    }

    fn compile(&mut self, spec: &RouteSpec<'_>) -> Result<(Vec<Piece>, Endpoint)> {
        let fault = |reason: &str| {
            Error::RouteTable(format!(
                "route {} {:?}: {reason}",
                spec.method, spec.pattern
            ))
        };
        let method = normalise_method(spec.method)
            .ok_or_else(|| fault("the method is not an HTTP method token or '*'"))?;
        let pieces = parse_pattern(spec.pattern).map_err(|reason| fault(&reason))?;

        self.names.push(spec.name.into());
        let endpoint = Endpoint {
            method,
            requirement: spec.requirement,
            name: self.names.len() - 1,
        };
        Ok((pieces, endpoint))
    }

    fn strip_prefix<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path.strip_prefix(&*self.prefix)?;
        (self.prefix.is_empty() || rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }
}

/// The path as Werkzeug matches it: it collapses leading slashes into one
/// (`MapAdapter.match` does `"/" + path.lstrip("/")`), so `//api/...` reaches
/// the Flask rule for `/api/...`. Starlette does not; the first-match tier
/// sees the path as it is.
fn werkzeug_path(path: &str) -> &str {
    let rest = path.trim_start_matches('/');
    if rest.len() == path.len() {
        return path;
    }
    &path[path.len() - rest.len() - 1..]
}

/// How much placeholder matching one lookup may do, in bytes looked at. A
/// real request needs a few hundred (a 16 KiB artifact path, the most uvicorn
/// accepts, about 16 KiB); a crafted path that would make the backtracking
/// quadratic runs out, and the lookup fails closed: MANAGE.
const MATCH_BUDGET: usize = 1 << 16;

/// The matching work left to one lookup.
struct Budget(Cell<usize>);

/// The budget ran out before the lookup could tell which route serves.
#[derive(Debug)]
struct Exhausted;

/// What a tier's search yields: the endpoint that serves, none, or no answer.
type Found<'t> = std::result::Result<Option<&'t Endpoint>, Exhausted>;

impl Budget {
    fn new() -> Self {
        Self(Cell::new(MATCH_BUDGET))
    }

    fn spend(&self, bytes: usize) -> std::result::Result<(), Exhausted> {
        let left = self.0.get().checked_sub(bytes.max(1)).ok_or(Exhausted)?;
        self.0.set(left);
        Ok(())
    }
}

/// A fast hash for the tables' maps (the multiply-rotate of rustc's
/// `FxHasher`, eight bytes at a time). Their keys are the table's own literal
/// segments, fixed when it is built, so a client has nothing to flood: a
/// lookup that collides only probes a few hundred fixed entries. The
/// protection of the standard hasher is not needed here, and its cost is.
#[derive(Default)]
struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut word = [0; 8];
        let rest = chunks.remainder();
        word[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(word));
    }
}

/// A map keyed by literal text.
type TextMap<V> = HashMap<Box<str>, V, BuildHasherDefault<FastHasher>>;

const UNKNOWN: Route<'static> = Route {
    requirement: Requirement::Level(Level::Manage),
    name: UNKNOWN_ROUTE,
};

fn check_prefix(prefix: &str) -> Result<()> {
    let fault = |reason: &str| Error::RouteTable(format!("static prefix {prefix:?}: {reason}"));
    if prefix.is_empty() {
        return Ok(());
    }

    if !prefix.starts_with('/') {
        return Err(fault("must start with '/'"));
    }

    if prefix.ends_with('/') {
        return Err(fault("must not end with '/'"));
    }

    if prefix.contains("//") {
        return Err(fault("must not contain '//'"));
    }

    Ok(())
}

/// A route's method, requirement and name, as stored in either tier.
#[derive(Debug, Clone)]
struct Endpoint {
    /// Upper case, `HEAD` folded into `GET`, or `*`.
    method: Box<str>,
    requirement: Requirement,
    name: usize,
}

impl Endpoint {
    fn accepts(&self, method: &str) -> bool {
        &*self.method == "*" || self.method.eq_ignore_ascii_case(method)
    }
}

/// The strictest endpoint that accepts `method`, the first one on a tie.
fn strictest_for<'e>(endpoints: &'e [Endpoint], method: &str) -> Option<&'e Endpoint> {
    endpoints
        .iter()
        .filter(|endpoint| endpoint.accepts(method))
        .reduce(|best, next| {
            if best.requirement.strictest(next.requirement) == best.requirement {
                best
            } else {
                next
            }
        })
}

fn normalise_method(method: &str) -> Option<Box<str>> {
    if method == "*" {
        return Some(method.into());
    }

    let is_token = !method.is_empty()
        && method
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
    if !is_token {
        return None;
    }

    let upper = method.to_ascii_uppercase();
    Some(if upper == "HEAD" {
        "GET".into()
    } else {
        upper.into()
    })
}

/// A piece of a pattern: literal text or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Box<str>),
    Param(Param),
}

/// What a placeholder matches (see the table in the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    Segment,
    WerkzeugPath,
    StarlettePath,
}

impl Param {
    /// Werkzeug's converter weight: the default converter is tried before
    /// `path`.
    const fn weight(self) -> i64 {
        match self {
            Self::Segment => 100,
            Self::WerkzeugPath | Self::StarlettePath => 200,
        }
    }

    const fn spans_segments(self) -> bool {
        !matches!(self, Self::Segment)
    }
}

fn parse_pattern(pattern: &str) -> std::result::Result<Vec<Piece>, String> {
    if pattern.is_empty() {
        return Ok(Vec::new());
    }

    if !pattern.starts_with('/') {
        return Err("a pattern must start with '/'".into());
    }

    if pattern.contains("//") {
        return Err("a pattern must not contain '//'".into());
    }

    let mut pieces = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find(['<', '>', '{', '}']) {
        let close = match rest.as_bytes()[open] {
            b'<' => '>',
            b'{' => '}',
            stray => return Err(format!("unbalanced '{}'", char::from(stray))),
        };
        let Some(length) = rest[open + 1..].find(close) else {
            return Err(format!("unclosed placeholder at {:?}", &rest[open..]));
        };
        let body = &rest[open + 1..open + 1 + length];
        let param = if close == '>' {
            flask_param(body)?
        } else {
            fastapi_param(body)?
        };

        if open > 0 {
            pieces.push(Piece::Literal(rest[..open].into()));
        }
        pieces.push(Piece::Param(param));
        rest = &rest[open + length + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.into()));
    }
    Ok(pieces)
}

/// `<name>` or `<converter:name>`, as Werkzeug writes them.
fn flask_param(body: &str) -> std::result::Result<Param, String> {
    let (converter, name) = body.split_once(':').unwrap_or(("default", body));
    if !is_identifier(name) {
        return Err(format!("bad placeholder name in <{body}>"));
    }

    match converter {
        "default" | "string" => Ok(Param::Segment),
        "path" => Ok(Param::WerkzeugPath),
        _ => Err(format!(
            "unsupported converter in <{body}>; supported: default, string, path"
        )),
    }
}

/// `{name}` or `{name:converter}`, as Starlette writes them.
fn fastapi_param(body: &str) -> std::result::Result<Param, String> {
    let (name, converter) = body.split_once(':').unwrap_or((body, "str"));
    if !is_identifier(name) {
        return Err(format!("bad placeholder name in {{{body}}}"));
    }

    match converter {
        "str" => Ok(Param::Segment),
        "path" => Ok(Param::StarlettePath),
        _ => Err(format!(
            "unsupported converter in {{{body}}}; supported: str, path"
        )),
    }
}

fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// Where a match must end: Werkzeug's `\Z`, or Starlette's `$` (which also
/// accepts one trailing line feed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Exact,
    Dollar,
}

impl End {
    fn accepts(self, rest: &str) -> bool {
        rest.is_empty() || (self == Self::Dollar && rest == "\n")
    }
}

/// Whether `text` matches the pieces from its start to `end`, backtracking
/// over where each placeholder stops; every byte looked at is paid from the
/// lookup's budget.
fn matches(
    pieces: &[Piece],
    text: &str,
    end: End,
    budget: &Budget,
) -> std::result::Result<bool, Exhausted> {
    let Some((first, rest)) = pieces.split_first() else {
        return Ok(end.accepts(text));
    };
    let param = match first {
        Piece::Literal(literal) => {
            budget.spend(literal.len())?;
            return match text.strip_prefix(&**literal) {
                Some(after) => matches(rest, after, end, budget),
                None => Ok(false),
            };
        }
        Piece::Param(param) => *param,
    };

    budget.spend(text.len())?;
    let Some((shortest, longest)) = param_span(param, text) else {
        return Ok(false);
    };
    match rest.first() {
        // Last piece: it takes all it may, and the end must follow.
        None => return Ok(end.accepts(&text[longest..])),
        // Before a literal, only a stop where that literal starts can succeed.
        Some(Piece::Literal(literal)) => {
            let mut from = shortest;
            while from <= longest {
                let Some(found) = find_literal(&text[from..], literal, longest - from, budget)?
                else {
                    return Ok(false);
                };
                let stop = from + found;
                if matches(rest, &text[stop..], end, budget)? {
                    return Ok(true);
                }
                from = stop + first_char_len(&text[stop..]).max(1);
            }
            return Ok(false);
        }
        Some(Piece::Param(_)) => {}
    }
    for stop in shortest..=longest {
        if text.is_char_boundary(stop) && matches(rest, &text[stop..], end, budget)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The shortest and longest prefix of `text` a placeholder may take, in bytes.
fn param_span(param: Param, text: &str) -> Option<(usize, usize)> {
    match param {
        Param::Segment => {
            let longest = position(text, b'/').unwrap_or(text.len());
            (longest > 0).then(|| (first_char_len(text), longest))
        }
        Param::StarlettePath => Some((0, position(text, b'\n').unwrap_or(text.len()))),
        Param::WerkzeugPath => {
            let first = text.chars().next().filter(|&first| first != '/')?;
            let start = first.len_utf8();
            let longest = position(&text[start..], b'\n').map_or(text.len(), |at| start + at);
            Some((start, longest))
        }
    }
}

/// Where `byte` (an ASCII byte, so never inside a UTF-8 sequence) first
/// occurs; a plain scan beats the generic `str::find` on these short texts.
fn position(text: &str, byte: u8) -> Option<usize> {
    text.bytes().position(|b| b == byte)
}

/// Where `needle` first occurs in `text`, starting no later than
/// `last_start`; every byte looked at is paid from the budget. The route
/// literals are short, so a scan for the first byte beats setting up
/// `str::find`'s Two-Way searcher on every call.
fn find_literal(
    text: &str,
    needle: &str,
    last_start: usize,
    budget: &Budget,
) -> std::result::Result<Option<usize>, Exhausted> {
    let Some((&first, rest)) = needle.as_bytes().split_first() else {
        return Ok(Some(0));
    };
    let bytes = text.as_bytes();
    let end = last_start.saturating_add(1).min(bytes.len());
    let mut from = 0;
    while from < end {
        let Some(at) = bytes[from..end].iter().position(|&byte| byte == first) else {
            budget.spend(end - from)?;
            return Ok(None);
        };
        budget.spend(at + 1 + rest.len())?;
        let start = from + at;
        if bytes[start + 1..].starts_with(rest) {
            return Ok(Some(start));
        }
        from = start + 1;
    }
    Ok(None)
}

/// The first segment of `rest` and what follows its '/', if anything does.
fn split_segment(rest: &str) -> (&str, Option<&str>) {
    match position(rest, b'/') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    }
}

fn first_char_len(text: &str) -> usize {
    text.chars().next().map_or(0, char::len_utf8)
}

/// The first-match tier. Entries are indexed by their leading literal
/// segments so that a lookup only tries the entries that can match, in
/// registration order.
#[derive(Debug)]
struct FirstMatchTier {
    /// In registration order: an entry's index is its rank.
    entries: Vec<(Box<[Piece]>, Endpoint)>,
    /// Node 0 is the root: entries whose first segment is not fully literal.
    index: Vec<IndexNode>,
    /// Entries for the bare static prefix (pattern `""`).
    bare: Vec<usize>,
}

#[derive(Debug, Default)]
struct IndexNode {
    children: TextMap<usize>,
    /// Ranks of the entries whose literal segments lead here, ascending.
    ranks: Vec<usize>,
}

impl Default for FirstMatchTier {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            index: vec![IndexNode::default()],
            bare: Vec::new(),
        }
    }
}

impl FirstMatchTier {
    fn insert(&mut self, pieces: Vec<Piece>, endpoint: Endpoint) {
        let rank = self.entries.len();
        let Some((Piece::Literal(head), after)) = pieces.split_first() else {
            self.entries.push((pieces.into(), endpoint));
            self.bare.push(rank);
            return;
        };

        // `head` starts with '/': every component but the last is followed by
        // a '/', so it is a whole literal segment the path must repeat.
        let mut components: Vec<&str> = head[1..].split('/').collect();
        let last = components.pop().unwrap_or_default();
        let mut node = 0;
        for segment in components {
            node = self.child(node, segment);
        }

        let mut tail = Vec::with_capacity(after.len() + 1);
        if !last.is_empty() {
            tail.push(Piece::Literal(last.into()));
        }
        tail.extend_from_slice(after);
        self.index[node].ranks.push(rank);
        self.entries.push((tail.into(), endpoint));
    }

    fn child(&mut self, node: usize, segment: &str) -> usize {
        if let Some(&child) = self.index[node].children.get(segment) {
            return child;
        }
        self.index.push(IndexNode::default());
        let child = self.index.len() - 1;
        self.index[node].children.insert(segment.into(), child);
        child
    }

    fn find(&self, method: &str, path: &str, budget: &Budget) -> Found<'_> {
        let best = if path.is_empty() {
            self.first_of(&self.bare, method, path, None, budget)?
        } else if let Some(rest) = path.strip_prefix('/') {
            self.walk(method, rest, budget)?
        } else {
            None
        };
        Ok(best
            .and_then(|rank| self.entries.get(rank))
            .map(|(_, endpoint)| endpoint))
    }

    /// Follows the path's segments down the index, keeping the lowest rank
    /// that matches at any depth.
    fn walk(
        &self,
        method: &str,
        mut rest: &str,
        budget: &Budget,
    ) -> std::result::Result<Option<usize>, Exhausted> {
        let Some(mut node) = self.index.first() else {
            return Ok(None);
        };
        let mut best = None;
        loop {
            best = self
                .first_of(&node.ranks, method, rest, best, budget)?
                .or(best);
            let (segment, Some(after)) = split_segment(rest) else {
                return Ok(best);
            };
            let Some(child) = node.children.get(segment).and_then(|&c| self.index.get(c)) else {
                return Ok(best);
            };
            node = child;
            rest = after;
        }
    }

    /// The lowest rank among `ranks` that matches and beats `better_than`.
    fn first_of(
        &self,
        ranks: &[usize],
        method: &str,
        rest: &str,
        better_than: Option<usize>,
        budget: &Budget,
    ) -> std::result::Result<Option<usize>, Exhausted> {
        for &rank in ranks {
            if better_than.is_some_and(|best| rank >= best) {
                break;
            }
            let Some((tail, endpoint)) = self.entries.get(rank) else {
                continue;
            };
            if endpoint.accepts(method) && matches(tail, rest, End::Dollar, budget)? {
                return Ok(Some(rank));
            }
        }
        Ok(None)
    }
}

/// A Werkzeug rule part: one static segment, or a dynamic part (one segment,
/// or for a `final` part everything from its segment to the end).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Static(Box<str>),
    Dynamic { pieces: Vec<Piece>, is_final: bool },
}

/// Cuts a pattern into Werkzeug's rule parts. The leading '/' is dropped, as
/// lookups drop the path's; the bare pattern `""` has no parts.
fn werkzeug_parts(pieces: &[Piece]) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut current: Vec<Piece> = Vec::new();
    let mut is_final = false;
    for (at, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Param(param) => {
                is_final |= param.spans_segments();
                current.push(Piece::Param(*param));
            }
            Piece::Literal(text) => {
                let text = if at == 0 { &text[1..] } else { &text[..] };
                if is_final {
                    push_literal(&mut current, text);
                    continue;
                }
                let mut segments = text.split('/');
                push_literal(&mut current, segments.next().unwrap_or_default());
                for segment in segments {
                    parts.push(finish_part(std::mem::take(&mut current), false));
                    push_literal(&mut current, segment);
                }
            }
        }
    }
    if !pieces.is_empty() {
        parts.push(finish_part(current, is_final));
    }
    parts
}

fn push_literal(pieces: &mut Vec<Piece>, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(Piece::Literal(previous)) = pieces.last_mut() {
        *previous = format!("{previous}{text}").into();
    } else {
        pieces.push(Piece::Literal(text.into()));
    }
}

fn finish_part(pieces: Vec<Piece>, is_final: bool) -> Part {
    match pieces.as_slice() {
        [] => Part::Static("".into()),
        [Piece::Literal(text)] => Part::Static(text.clone()),
        _ => Part::Dynamic { pieces, is_final },
    }
}

/// Werkzeug's `Weighting` of a dynamic part; dynamic transitions are tried in
/// ascending order (more static text first, then lighter converters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Weight {
    static_count: i64,
    statics: Vec<(i64, i64)>,
    param_count: i64,
    params: Vec<i64>,
}

impl Weight {
    fn of(pieces: &[Piece]) -> Self {
        let mut statics = Vec::new();
        let mut params = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Param(param) => params.push(param.weight()),
                // Werkzeug counts runs of text between slashes separately.
                Piece::Literal(text) => {
                    for run in text.split('/').filter(|run| !run.is_empty()) {
                        let index = i64::try_from(statics.len()).unwrap_or(i64::MAX);
                        let length = i64::try_from(run.chars().count()).unwrap_or(i64::MAX);
                        statics.push((index, -length));
                    }
                }
            }
        }
        Self {
            static_count: -i64::try_from(statics.len()).unwrap_or(i64::MAX),
            statics,
            param_count: -i64::try_from(params.len()).unwrap_or(i64::MAX),
            params,
        }
    }
}

/// The most-specific tier: Werkzeug's state machine.
#[derive(Debug)]
struct MostSpecificTier {
    states: Vec<State>,
}

#[derive(Debug, Default)]
struct State {
    statics: TextMap<usize>,
    dynamic: Vec<Transition>,
    endpoints: Vec<Endpoint>,
}

#[derive(Debug)]
struct Transition {
    pieces: Box<[Piece]>,
    is_final: bool,
    weight: Weight,
    to: usize,
}

impl Default for MostSpecificTier {
    fn default() -> Self {
        Self {
            states: vec![State::default()],
        }
    }
}

impl MostSpecificTier {
    fn insert(&mut self, pieces: &[Piece], endpoint: Endpoint) {
        let mut state = 0;
        for part in werkzeug_parts(pieces) {
            state = match part {
                Part::Static(segment) => self.static_child(state, segment),
                Part::Dynamic { pieces, is_final } => self.dynamic_child(state, pieces, is_final),
            };
        }
        self.states[state].endpoints.push(endpoint);
    }

    fn static_child(&mut self, state: usize, segment: Box<str>) -> usize {
        if let Some(&child) = self.states[state].statics.get(&segment) {
            return child;
        }
        let child = self.new_state();
        self.states[state].statics.insert(segment, child);
        child
    }

    fn dynamic_child(&mut self, state: usize, pieces: Vec<Piece>, is_final: bool) -> usize {
        let same = self.states[state]
            .dynamic
            .iter()
            .find(|transition| transition.is_final == is_final && *transition.pieces == *pieces);
        if let Some(transition) = same {
            return transition.to;
        }
        let to = self.new_state();
        self.states[state].dynamic.push(Transition {
            weight: Weight::of(&pieces),
            pieces: pieces.into(),
            is_final,
            to,
        });
        to
    }

    fn new_state(&mut self) -> usize {
        self.states.push(State::default());
        self.states.len() - 1
    }

    /// Stable, like Werkzeug's sort: equal weights keep registration order.
    fn sort_by_weight(&mut self) {
        for state in &mut self.states {
            state.dynamic.sort_by(|a, b| a.weight.cmp(&b.weight));
        }
    }

    fn find(&self, method: &str, path: &str, budget: &Budget) -> Found<'_> {
        if path.is_empty() {
            return self.walk(0, None, method, budget);
        }
        match path.strip_prefix('/') {
            Some(rest) => self.walk(0, Some(rest), method, budget),
            None => Ok(None),
        }
    }

    /// Werkzeug's depth-first match; `rest` is `None` once every segment is
    /// consumed. The depth is bounded by the longest pattern, not the path.
    fn walk(&self, state: usize, rest: Option<&str>, method: &str, budget: &Budget) -> Found<'_> {
        let Some(state) = self.states.get(state) else {
            return Ok(None);
        };
        let Some(rest) = rest else {
            return Ok(strictest_for(&state.endpoints, method));
        };

        let (segment, after) = split_segment(rest);
        if let Some(&child) = state.statics.get(segment) {
            if let Some(found) = self.walk(child, after, method, budget)? {
                return Ok(Some(found));
            }
        }

        for transition in &state.dynamic {
            let (text, next) = if transition.is_final {
                (rest, None)
            } else {
                (segment, after)
            };
            if matches(&transition.pieces, text, End::Exact, budget)? {
                if let Some(found) = self.walk(transition.to, next, method, budget)? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    const READ: Requirement = Requirement::Level(Level::Read);
    const EDIT: Requirement = Requirement::Level(Level::Edit);
    const MANAGE: Requirement = Requirement::Level(Level::Manage);

    fn spec<'a>(
        method: &'a str,
        pattern: &'a str,
        requirement: Requirement,
        name: &'a str,
    ) -> RouteSpec<'a> {
        RouteSpec {
            method,
            pattern,
            requirement,
            name,
        }
    }

    fn flask(routes: &[RouteSpec<'_>]) -> RouteTable {
        RouteTable::new(&[], routes, "").unwrap()
    }

    fn decide(table: &RouteTable, method: &str, path: &str) -> (Requirement, String) {
        let route = table.lookup(method, path);
        (route.requirement, route.name.to_owned())
    }

    fn name(table: &RouteTable, method: &str, path: &str) -> String {
        table.lookup(method, path).name.to_owned()
    }

    #[test]
    fn static_route_is_found_and_unknown_paths_need_manage() {
        let table = flask(&[spec("GET", "/api/2.0/mlflow/runs/get", READ, "GetRun")]);

        assert_eq!(
            decide(&table, "GET", "/api/2.0/mlflow/runs/get"),
            (READ, "GetRun".into())
        );
        assert_eq!(
            decide(&table, "GET", "/api/2.0/mlflow/runs/gets"),
            (MANAGE, UNKNOWN_ROUTE.into())
        );
        assert_eq!(
            decide(&table, "POST", "/api/2.0/mlflow/runs/get"),
            (MANAGE, UNKNOWN_ROUTE.into())
        );
        assert_eq!(decide(&table, "GET", ""), (MANAGE, UNKNOWN_ROUTE.into()));
        assert_eq!(
            decide(&table, "GET", "api/2.0/mlflow/runs/get"),
            (MANAGE, UNKNOWN_ROUTE.into())
        );
    }

    #[test]
    fn head_counts_as_get_and_methods_ignore_case() {
        let table = flask(&[
            spec("GET", "/health", Requirement::Public, "health"),
            spec("post", "/api/2.0/mlflow/runs/create", EDIT, "CreateRun"),
        ]);

        assert_eq!(
            table.lookup("HEAD", "/health").requirement,
            Requirement::Public
        );
        assert_eq!(
            table.lookup("head", "/health").requirement,
            Requirement::Public
        );
        assert_eq!(
            table
                .lookup("Post", "/api/2.0/mlflow/runs/create")
                .requirement,
            EDIT
        );
        assert_eq!(
            table
                .lookup("PUT", "/api/2.0/mlflow/runs/create")
                .requirement,
            MANAGE
        );
    }

    #[test]
    fn a_head_entry_is_stored_as_get() {
        let table = flask(&[spec("HEAD", "/ping", Requirement::Public, "ping")]);

        assert_eq!(name(&table, "GET", "/ping"), "ping");
    }

    #[test]
    fn star_method_accepts_every_method() {
        let table = flask(&[spec("*", "/mounted/<path:rest>", MANAGE, "mount")]);

        assert_eq!(name(&table, "PROPFIND", "/mounted/a/b"), "mount");
        assert_eq!(name(&table, "GET", "/mounted/a"), "mount");
    }

    #[test]
    fn static_segment_beats_a_placeholder() {
        let table = flask(&[
            spec(
                "GET",
                "/api/2.0/mlflow/logged-models/<model_id>",
                READ,
                "GetLoggedModel",
            ),
            spec(
                "DELETE",
                "/api/2.0/mlflow/logged-models/<model_id>",
                MANAGE,
                "DeleteLoggedModel",
            ),
            spec(
                "DELETE",
                "/api/2.0/mlflow/logged-models/search",
                EDIT,
                "NotReal",
            ),
        ]);

        assert_eq!(
            name(&table, "DELETE", "/api/2.0/mlflow/logged-models/search"),
            "NotReal"
        );
        assert_eq!(
            name(&table, "DELETE", "/api/2.0/mlflow/logged-models/m-1"),
            "DeleteLoggedModel"
        );
        assert_eq!(
            name(&table, "GET", "/api/2.0/mlflow/logged-models/search"),
            "GetLoggedModel"
        );
    }

    #[test]
    fn a_static_route_of_another_method_falls_back_to_a_placeholder() {
        let table = flask(&[
            spec(
                "POST",
                "/api/2.0/mlflow/logged-models/search",
                READ,
                "SearchLoggedModels",
            ),
            spec(
                "DELETE",
                "/api/2.0/mlflow/logged-models/<model_id>",
                MANAGE,
                "DeleteLoggedModel",
            ),
        ]);

        assert_eq!(
            decide(&table, "DELETE", "/api/2.0/mlflow/logged-models/search"),
            (MANAGE, "DeleteLoggedModel".into())
        );
    }

    #[test]
    fn placeholder_matches_one_non_empty_segment() {
        let table = flask(&[spec("GET", "/webhooks/<webhook_id>", MANAGE, "GetWebhook")]);

        assert_eq!(name(&table, "GET", "/webhooks/w1"), "GetWebhook");
        assert_eq!(name(&table, "GET", "/webhooks/"), UNKNOWN_ROUTE);
        assert_eq!(name(&table, "GET", "/webhooks/w1/x"), UNKNOWN_ROUTE);
        assert_eq!(name(&table, "GET", "/webhooks/w1/"), UNKNOWN_ROUTE);
        assert_eq!(name(&table, "GET", "/webhooks/line\nfeed"), "GetWebhook");
    }

    #[test]
    fn werkzeug_path_needs_a_first_character_other_than_a_slash() {
        let table = flask(&[spec(
            "GET",
            "/artifacts/<path:artifact_path>",
            READ,
            "DownloadArtifact",
        )]);

        assert_eq!(name(&table, "GET", "/artifacts/a"), "DownloadArtifact");
        assert_eq!(
            name(&table, "GET", "/artifacts/1/abc/artifacts/model/MLmodel"),
            "DownloadArtifact"
        );
        assert_eq!(name(&table, "GET", "/artifacts/a//b"), "DownloadArtifact");
        assert_eq!(name(&table, "GET", "/artifacts/a/"), "DownloadArtifact");
        assert_eq!(name(&table, "GET", "/artifacts/"), UNKNOWN_ROUTE);
        assert_eq!(name(&table, "GET", "/artifacts//a"), UNKNOWN_ROUTE);
        assert_eq!(name(&table, "GET", "/artifacts"), UNKNOWN_ROUTE);
    }

    #[test]
    fn path_placeholders_stop_at_a_line_feed() {
        let table = RouteTable::new(
            &[spec("GET", "/native/{rest:path}", READ, "native")],
            &[spec("GET", "/flask/<path:rest>", READ, "flask")],
            "",
        )
        .unwrap();

        assert_eq!(name(&table, "GET", "/flask/\n"), "flask");
        assert_eq!(name(&table, "GET", "/flask/a\nb"), UNKNOWN_ROUTE);
        assert_eq!(name(&table, "GET", "/native/a\nb"), UNKNOWN_ROUTE);
    }

    #[test]
    fn starlette_end_accepts_one_trailing_line_feed() {
        let table = RouteTable::new(
            &[spec("GET", "/health", Requirement::Public, "health")],
            &[spec("GET", "/version", Requirement::Public, "version")],
            "",
        )
        .unwrap();

        assert_eq!(name(&table, "GET", "/health\n"), "health");
        assert_eq!(name(&table, "GET", "/health\n\n"), UNKNOWN_ROUTE);
        assert_eq!(name(&table, "GET", "/version\n"), UNKNOWN_ROUTE);
    }

    #[test]
    fn starlette_path_may_be_empty() {
        let table = RouteTable::new(
            &[spec(
                "GET",
                "/mcp-servers/{name:path}",
                READ,
                "get_mcp_server",
            )],
            &[],
            "",
        )
        .unwrap();

        assert_eq!(name(&table, "GET", "/mcp-servers/"), "get_mcp_server");
        assert_eq!(name(&table, "GET", "/mcp-servers/a//b/"), "get_mcp_server");
        assert_eq!(name(&table, "GET", "/mcp-servers"), UNKNOWN_ROUTE);
    }

    #[test]
    fn first_match_tier_takes_the_first_registered_route_not_the_most_specific() {
        let routes = [
            spec(
                "DELETE",
                "/mcp/{name:path}/versions/{version:path}/tags/{key:path}",
                EDIT,
                "delete_version_tag",
            ),
            spec(
                "DELETE",
                "/mcp/{name:path}/versions/{version:path}",
                MANAGE,
                "delete_version",
            ),
            spec(
                "DELETE",
                "/mcp/{name:path}/tags/{key:path}",
                EDIT,
                "delete_tag",
            ),
            spec("DELETE", "/mcp/{name:path}", MANAGE, "delete_server"),
        ];
        let table = RouteTable::new(&routes, &[], "").unwrap();

        // Starlette serves this with delete_version (name="a/tags/b"), though
        // a static "tags" segment would make delete_tag look more specific.
        assert_eq!(
            decide(&table, "DELETE", "/mcp/a/tags/b/versions/c"),
            (MANAGE, "delete_version".into())
        );
        assert_eq!(
            decide(&table, "DELETE", "/mcp/a/tags/b"),
            (EDIT, "delete_tag".into())
        );
        assert_eq!(
            decide(&table, "DELETE", "/mcp/a/versions/1/tags/k"),
            (EDIT, "delete_version_tag".into())
        );
        assert_eq!(
            decide(&table, "DELETE", "/mcp/a"),
            (MANAGE, "delete_server".into())
        );
    }

    #[test]
    fn first_match_tier_skips_a_route_of_another_method_then_falls_through() {
        let table = RouteTable::new(
            &[
                spec(
                    "GET",
                    "/api/2.0/mlflow-artifacts/artifacts/{artifact_path:path}",
                    READ,
                    "download_artifact",
                ),
                spec(
                    "PUT",
                    "/api/2.0/mlflow-artifacts/artifacts/{artifact_path:path}",
                    EDIT,
                    "upload_artifact",
                ),
            ],
            &[spec(
                "DELETE",
                "/api/2.0/mlflow-artifacts/artifacts/<path:artifact_path>",
                MANAGE,
                "DeleteArtifact",
            )],
            "",
        )
        .unwrap();
        let path = "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model/MLmodel";

        assert_eq!(
            decide(&table, "GET", path),
            (READ, "download_artifact".into())
        );
        assert_eq!(
            decide(&table, "PUT", path),
            (EDIT, "upload_artifact".into())
        );
        assert_eq!(
            decide(&table, "DELETE", path),
            (MANAGE, "DeleteArtifact".into())
        );
        assert_eq!(decide(&table, "POST", path), (MANAGE, UNKNOWN_ROUTE.into()));
    }

    #[test]
    fn first_match_tier_wins_over_a_more_specific_flask_rule() {
        let table = RouteTable::new(
            &[spec("GET", "/x/{rest:path}", MANAGE, "native")],
            &[spec("GET", "/x/static", Requirement::Public, "flask")],
            "",
        )
        .unwrap();

        assert_eq!(name(&table, "GET", "/x/static"), "native");
    }

    #[test]
    fn first_match_entries_at_different_depths_keep_registration_order() {
        let table = RouteTable::new(
            &[
                spec("GET", "/a/{rest:path}", MANAGE, "early"),
                spec("GET", "/a/b/c", READ, "late"),
            ],
            &[],
            "",
        )
        .unwrap();

        assert_eq!(name(&table, "GET", "/a/b/c"), "early");
    }

    #[test]
    fn placeholder_inside_a_segment_matches_around_its_literal() {
        let table = RouteTable::new(
            &[spec(
                "POST",
                "/gateway/gemini/v1beta/models/{endpoint_name}:generateContent",
                EDIT,
                "gemini",
            )],
            &[],
            "",
        )
        .unwrap();

        assert_eq!(
            name(
                &table,
                "POST",
                "/gateway/gemini/v1beta/models/chat:generateContent"
            ),
            "gemini"
        );
        assert_eq!(
            name(
                &table,
                "POST",
                "/gateway/gemini/v1beta/models/a:b:generateContent"
            ),
            "gemini"
        );
        assert_eq!(
            name(
                &table,
                "POST",
                "/gateway/gemini/v1beta/models/:generateContent"
            ),
            UNKNOWN_ROUTE
        );
        assert_eq!(
            name(
                &table,
                "POST",
                "/gateway/gemini/v1beta/models/a/b:generateContent"
            ),
            UNKNOWN_ROUTE
        );
    }

    #[test]
    fn werkzeug_tries_a_final_part_with_static_text_before_a_plain_placeholder() {
        // Werkzeug weighs `<path:p>/b` (static text) before `<x>` (none), so
        // "/a/q/b" is served by the path rule although `<x>/b` also fits.
        let table = flask(&[
            spec("GET", "/a/<x>/b", Requirement::Public, "plain"),
            spec("GET", "/a/<path:p>/b", MANAGE, "path"),
        ]);

        assert_eq!(name(&table, "GET", "/a/q/b"), "path");
    }

    #[test]
    fn werkzeug_tries_the_default_converter_before_path() {
        let table = flask(&[
            spec("GET", "/a/<path:p>", MANAGE, "path"),
            spec("GET", "/a/<x>", READ, "plain"),
        ]);

        assert_eq!(name(&table, "GET", "/a/q"), "plain");
        assert_eq!(name(&table, "GET", "/a/q/r"), "path");
    }

    #[test]
    fn werkzeug_backtracks_out_of_a_dead_static_branch() {
        let table = flask(&[
            spec("GET", "/a/static/x", READ, "static"),
            spec("GET", "/a/<name>/y", EDIT, "dynamic"),
        ]);

        assert_eq!(name(&table, "GET", "/a/static/y"), "dynamic");
    }

    #[test]
    fn an_exact_tie_takes_the_strictest_requirement() {
        let table = flask(&[
            spec("GET", "/items/<item>", READ, "read"),
            spec("GET", "/items/{other}", MANAGE, "manage"),
            spec("GET", "/items/<item>", EDIT, "edit"),
        ]);

        assert_eq!(decide(&table, "GET", "/items/1"), (MANAGE, "manage".into()));
    }

    #[test]
    fn trailing_slash_is_its_own_segment() {
        let table = RouteTable::new(
            &[spec("POST", "/ajax-api/3.0/jobs/", MANAGE, "submit_job")],
            &[spec("GET", "/", Requirement::Authenticated, "serve")],
            "",
        )
        .unwrap();

        assert_eq!(name(&table, "POST", "/ajax-api/3.0/jobs/"), "submit_job");
        assert_eq!(name(&table, "POST", "/ajax-api/3.0/jobs"), UNKNOWN_ROUTE);
        assert_eq!(name(&table, "GET", "/"), "serve");
        assert_eq!(name(&table, "POST", "/ajax-api/3.0/jobs//"), UNKNOWN_ROUTE);
    }

    #[test]
    fn leading_slashes_collapse_for_flask_rules_only() {
        let table = RouteTable::new(
            &[spec("GET", "/native", READ, "native")],
            &[
                spec("GET", "/api/2.0/mlflow/runs/get", READ, "GetRun"),
                spec("GET", "/", Requirement::Authenticated, "serve"),
            ],
            "",
        )
        .unwrap();

        assert_eq!(name(&table, "GET", "//api/2.0/mlflow/runs/get"), "GetRun");
        assert_eq!(name(&table, "GET", "///"), "serve");
        assert_eq!(name(&table, "GET", "//native"), UNKNOWN_ROUTE);
        assert_eq!(
            name(&table, "GET", "/api/2.0//mlflow/runs/get"),
            UNKNOWN_ROUTE
        );
    }

    #[test]
    fn leading_slashes_collapse_before_the_prefix_is_stripped() {
        let table = RouteTable::new(
            &[],
            &[spec("GET", "/health", Requirement::Public, "health")],
            "/mlflow",
        )
        .unwrap();

        assert_eq!(name(&table, "GET", "//mlflow/health"), "health");
        assert_eq!(name(&table, "GET", "/mlflow//health"), UNKNOWN_ROUTE);
    }

    #[test]
    fn static_prefix_is_stripped_and_paths_outside_it_are_unknown() {
        let table = RouteTable::new(
            &[spec("GET", "/health", Requirement::Public, "health")],
            &[
                spec("GET", "/", Requirement::Authenticated, "serve"),
                spec("GET", "", Requirement::Authenticated, "serve"),
                spec(
                    "GET",
                    "/static-files/<path:path>",
                    Requirement::Public,
                    "static",
                ),
            ],
            "/mlflow",
        )
        .unwrap();

        assert_eq!(name(&table, "GET", "/mlflow/health"), "health");
        assert_eq!(
            name(&table, "GET", "/mlflow/static-files/main.js"),
            "static"
        );
        assert_eq!(name(&table, "GET", "/mlflow/"), "serve");
        assert_eq!(name(&table, "GET", "/mlflow"), "serve");
        assert_eq!(name(&table, "GET", "/health"), UNKNOWN_ROUTE);
        assert_eq!(name(&table, "GET", "/mlflowx/health"), UNKNOWN_ROUTE);
        assert_eq!(name(&table, "GET", "/static-files/main.js"), UNKNOWN_ROUTE);
        assert_eq!(table.static_prefix(), "/mlflow");
    }

    #[test]
    fn without_a_bare_entry_the_bare_prefix_is_unknown() {
        let table = RouteTable::new(&[], &[spec("GET", "/", READ, "serve")], "/p").unwrap();

        assert_eq!(name(&table, "GET", "/p"), UNKNOWN_ROUTE);
    }

    #[test]
    fn bare_entry_in_the_first_match_tier_is_found() {
        let table = RouteTable::new(&[spec("GET", "", READ, "bare")], &[], "/p").unwrap();

        assert_eq!(decide(&table, "GET", "/p"), (READ, "bare".into()));
        assert_eq!(name(&table, "GET", "/p/"), UNKNOWN_ROUTE);
    }

    #[test]
    fn bad_patterns_are_refused_with_the_entry_named() {
        for pattern in [
            "api/2.0/x",
            "/a//b",
            "/a/<x",
            "/a/x>",
            "/a/{x",
            "/a/}",
            "/a/<int:x>",
            "/a/<string(length=2):x>",
            "/a/{x:int}",
            "/a/<1x>",
            "/a/{}",
        ] {
            let error = RouteTable::new(&[], &[spec("GET", pattern, READ, "r")], "").unwrap_err();
            let Error::RouteTable(message) = error else {
                panic!("wrong error for {pattern:?}");
            };
            assert!(message.contains(&format!("{pattern:?}")), "{message}");
        }
    }

    #[test]
    fn bad_methods_and_prefixes_are_refused() {
        for method in ["", "GE T", "GET\n", "ÄÖ"] {
            assert!(RouteTable::new(&[spec(method, "/a", READ, "r")], &[], "").is_err());
        }
        for prefix in ["mlflow", "/mlflow/", "//mlflow", "/a//b"] {
            assert!(RouteTable::new(&[], &[], prefix).is_err(), "{prefix}");
        }
    }

    #[test]
    fn levels_parse_from_their_names_only() {
        assert_eq!(
            RouteSpec::parse("GET", "/", "READ", "r")
                .unwrap()
                .requirement,
            READ
        );
        assert_eq!(
            RouteSpec::parse("GET", "/", "AUTHENTICATED", "r")
                .unwrap()
                .requirement,
            Requirement::Authenticated
        );
        for bad in ["NO_PERMISSIONS", "read", "ADMIN", ""] {
            let error = RouteSpec::parse("GET", "/", bad, "r").unwrap_err();
            assert!(error.to_string().contains(Requirement::NAMES), "{error}");
        }
    }

    #[test]
    fn requirement_names_round_trip() {
        for requirement in [
            Requirement::Public,
            Requirement::Authenticated,
            READ,
            EDIT,
            MANAGE,
        ] {
            assert_eq!(Requirement::parse(requirement.as_str()), Some(requirement));
            assert_eq!(requirement.to_string(), requirement.as_str());
        }
    }

    #[test]
    fn requirements_are_met_by_high_enough_levels() {
        assert!(Requirement::Public.is_met_by(Level::NoPermissions));
        assert!(Requirement::Authenticated.is_met_by(Level::NoPermissions));
        assert!(!READ.is_met_by(Level::NoPermissions));
        assert!(READ.is_met_by(Level::Read));
        assert!(!EDIT.is_met_by(Level::Read));
        assert!(EDIT.is_met_by(Level::Manage));
        assert!(!MANAGE.is_met_by(Level::Edit));
    }

    #[test]
    fn strictest_orders_public_below_authenticated_below_levels() {
        assert_eq!(
            Requirement::Public.strictest(Requirement::Authenticated),
            Requirement::Authenticated
        );
        assert_eq!(Requirement::Authenticated.strictest(READ), READ);
        assert_eq!(MANAGE.strictest(EDIT), MANAGE);
        assert_eq!(READ.strictest(READ), READ);
    }

    #[test]
    fn length_counts_every_entry() {
        let table = RouteTable::new(
            &[spec("GET", "/a", READ, "a")],
            &[spec("GET", "/b", READ, "b"), spec("POST", "/b", EDIT, "b")],
            "",
        )
        .unwrap();

        assert_eq!(table.len(), 3);
        assert!(!table.is_empty());
        assert!(RouteTable::new(&[], &[], "").unwrap().is_empty());
    }

    #[test]
    fn long_adversarial_paths_stay_cheap() {
        let table = RouteTable::new(
            &[spec(
                "DELETE",
                "/mcp/{name:path}/versions/{version:path}/tags/{key:path}",
                EDIT,
                "tag",
            )],
            &[],
            "",
        )
        .unwrap();
        let path = format!("/mcp/{}x", "/versions".repeat(1500));

        let started = std::time::Instant::now();
        assert_eq!(name(&table, "DELETE", &path), UNKNOWN_ROUTE);
        assert!(started.elapsed() < std::time::Duration::from_millis(200));
    }

    #[test]
    fn running_out_of_matching_budget_fails_closed() {
        // Ruling out the first route takes quadratic work on this path; the
        // lookup gives up (MANAGE) rather than fall through to a weaker route.
        let table = RouteTable::new(
            &[
                spec(
                    "DELETE",
                    "/mcp/{name:path}/versions/{version:path}/tags/{key:path}",
                    MANAGE,
                    "x",
                ),
                spec("DELETE", "/mcp/{rest:path}", READ, "weaker"),
            ],
            &[],
            "",
        )
        .unwrap();
        let long = format!("/mcp/{}x", "a/versions/".repeat(3000));

        assert_eq!(
            decide(&table, "DELETE", "/mcp/a/versions/x"),
            (READ, "weaker".into())
        );
        assert_eq!(
            decide(&table, "DELETE", &long),
            (MANAGE, UNKNOWN_ROUTE.into())
        );
    }

    #[test]
    fn a_long_artifact_path_stays_within_budget() {
        let table = RouteTable::new(
            &[spec(
                "GET",
                "/artifacts/{artifact_path:path}",
                READ,
                "download",
            )],
            &[spec(
                "DELETE",
                "/artifacts/<path:artifact_path>",
                MANAGE,
                "delete",
            )],
            "",
        )
        .unwrap();
        let path = format!("/artifacts/{}x", "segment/".repeat(2047));

        assert!(path.len() > 16 * 1024);
        assert_eq!(name(&table, "GET", &path), "download");
        assert_eq!(name(&table, "DELETE", &path), "delete");
    }

    /// The table the builder makes for MLflow 3.17.2 under uvicorn (see
    /// `scripts/export_route_fixture.py`).
    fn mlflow_table() -> RouteTable {
        let fixture = include_str!("../benches/fixtures/mlflow-routes.tsv");
        let entries: Vec<(bool, RouteSpec<'_>)> = fixture
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                let spec = RouteSpec::parse(fields[1], fields[2], fields[3], fields[4]).unwrap();
                (fields[0] == "first-match", spec)
            })
            .collect();
        let tier = |first: bool| -> Vec<RouteSpec<'_>> {
            entries
                .iter()
                .filter(|(f, _)| *f == first)
                .map(|(_, spec)| *spec)
                .collect()
        };
        RouteTable::new(&tier(true), &tier(false), "").unwrap()
    }

    #[test]
    fn mlflow_table_decides_reads_writes_and_deletes() {
        let table = mlflow_table();
        let artifact = "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model/MLmodel";

        for (method, path, requirement) in [
            ("POST", "/api/2.0/mlflow/runs/search", READ),
            ("POST", "/api/2.0/mlflow/runs/create", EDIT),
            ("POST", "/api/2.0/mlflow/runs/delete", MANAGE),
            ("POST", "/ajax-api/2.0/mlflow/runs/delete-tag", EDIT),
            ("GET", artifact, READ),
            ("HEAD", artifact, READ),
            ("PUT", artifact, EDIT),
            ("DELETE", artifact, MANAGE),
            ("POST", "/v1/traces", EDIT),
            ("GET", "/gateway/mlflow/v1/models", READ),
            ("POST", "/ajax-api/3.0/jobs/", MANAGE),
            (
                "DELETE",
                "/api/3.0/mlflow/mcp-servers/a/tags/b/versions/c",
                MANAGE,
            ),
            ("GET", "/health", Requirement::Public),
            ("GET", "/", Requirement::Authenticated),
            ("GET", "//api/2.0/mlflow/runs/get", READ),
            ("GET", "/api/2.0/mlflow/nothing", MANAGE),
        ] {
            assert_eq!(
                table.lookup(method, path).requirement,
                requirement,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn static_answers_worked_out_in_advance_match_a_full_lookup() {
        let table = mlflow_table();

        for (path, answers) in &table.resolved {
            for (method, answer) in answers {
                let found = table.find(method, path, &Budget::new()).unwrap();
                assert_eq!(
                    found.map(|e| (e.requirement, e.name)),
                    *answer,
                    "{method} {path}"
                );
            }
        }
        assert!(table.resolved.len() > 300);
    }

    #[test]
    fn literals_are_found_where_they_first_occur_within_reach() {
        let find = |text: &str, needle: &str, last: usize| {
            find_literal(text, needle, last, &Budget::new()).unwrap()
        };

        assert_eq!(find("a/tags/b/tags/", "/tags/", 99), Some(1));
        assert_eq!(find("//tags", "/tags", 99), Some(1));
        assert_eq!(find("aaab", "ab", 99), Some(2));
        assert_eq!(find("€/x", "/x", 99), Some(3));
        assert_eq!(find("/tag", "/tags", 99), None);
        assert_eq!(find("", "/", 99), None);
        assert_eq!(find("abc", "", 99), Some(0));
        assert_eq!(find("ab/x", "/x", 2), Some(2));
        assert_eq!(find("ab/x", "/x", 1), None);
    }

    #[test]
    fn multibyte_text_is_matched_on_character_boundaries() {
        let table = RouteTable::new(
            &[spec("GET", "/ü/{x}é/{rest:path}", READ, "native")],
            &[spec("GET", "/ä/<x>ö", READ, "flask")],
            "",
        )
        .unwrap();

        assert_eq!(name(&table, "GET", "/ü/ßé/€"), "native");
        assert_eq!(name(&table, "GET", "/ä/€€ö"), "flask");
        assert_eq!(name(&table, "GET", "/ä/ö"), UNKNOWN_ROUTE);
    }
}
