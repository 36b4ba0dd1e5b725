//! The IMAP command grammar (RFC 9051, RFC 3501, and the extensions the
//! server offers), run on one whole command from the fragmenter.
//!
//! ```text
//! command         = tag SP (command-any / command-auth / command-nonauth /
//!                   command-select) CRLF
//! command-any     = "CAPABILITY" / "LOGOUT" / "NOOP" / id
//! command-auth    = append / create / delete / enable / examine / list /
//!                   namespace-command / rename / select / status /
//!                   subscribe / unsubscribe / idle / lsub
//! command-nonauth = login / authenticate / "STARTTLS"
//! command-select  = "CHECK" / "CLOSE" / "UNSELECT" / expunge / copy / move /
//!                   fetch / store / search / uid
//! ```
//!
//! Every error is a `CoreError::Syntax` whose offset points into the command
//! and whose `expected` names the argument, so the server can answer
//! `TAG BAD expected <that> at offset N`. Nesting (parentheses, SEARCH keys)
//! and the number of sequence ranges are bounded by [`CommandLimits`];
//! recursion never goes deeper than `max_depth`.

use crate::error::CoreError;

pub use super::args::{Date, DateTime};
pub(crate) use super::args::{PResult, Parser};
pub use super::fetch::{FetchAttr, Section, SectionText};
pub use super::search::{DateField, SearchKey, TextField, When};
pub use super::sequence::{SeqNumber, SequenceSet};

/// Bounds applied while parsing (see `mailcore.limits.ImapLimits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandLimits {
    /// Deepest nesting of parentheses and SEARCH keys (OR/NOT count too).
    pub max_depth: usize,
    /// Most ranges in one sequence set.
    pub max_ranges: usize,
}

impl Default for CommandLimits {
    fn default() -> Self {
        CommandLimits {
            max_depth: 32,
            max_ranges: 10000,
        }
    }
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Set,
    Add,
    Remove,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub body: CommandBody,
}

/// What the command asks for. Mailbox names are UTF-8 text with "INBOX"
/// in any case spelled "INBOX".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    Capability,
    Noop,
    Logout,
    StartTls,
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    Login {
        username: Vec<u8>,
        password: Vec<u8>,
    },
    Enable(Vec<String>),
    Select {
        mailbox: String,
        read_only: bool,
        parameters: Vec<(String, Option<Vec<u8>>)>,
    },
    Create(String),
    Delete(String),
    Rename {
        from: String,
        to: String,
    },
    Subscribe(String),
    Unsubscribe(String),
    List {
        selection: Vec<String>,
        reference: String,
        patterns: Vec<String>,
        returns: Vec<String>,
        status_items: Vec<String>,
    },
    Lsub {
        reference: String,
        pattern: String,
    },
    Namespace,
    Status {
        mailbox: String,
        items: Vec<String>,
    },
    Append {
        mailbox: String,
        flags: Vec<String>,
        date: Option<DateTime>,
        message: Vec<u8>,
        binary: bool,
        /// Sent as `UTF8 (~{n})` (RFC 6855): the message may hold UTF-8 headers.
        utf8: bool,
    },
    Idle,
    Check,
    Close,
    Unselect,
    Expunge(Option<SequenceSet>),
    Search {
        uid: bool,
        charset: Option<String>,
        returns: Option<Vec<String>>,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SequenceSet,
        attrs: Vec<FetchAttr>,
        changed_since: Option<u64>,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        mode: StoreMode,
        silent: bool,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: String,
    },
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: String,
    },
    Id(Option<Vec<(String, Option<String>)>>),
}

/// Parse one whole command (as the fragmenter hands it over).
pub fn parse_command(data: &[u8], limits: CommandLimits) -> Result<Command, CoreError> {
    let mut p = Parser {
        data,
        pos: 0,
        limits,
    };
    // tag = 1*<any ASTRING-CHAR except "+">
    let tag = p.take_while(super::fragment::is_tag_char);
    if tag.is_empty() {
        return p.err("tag");
    }
    let tag = String::from_utf8_lossy(tag).into_owned();
    p.sp()?;
    let body = command_body(&mut p)?;
    p.end()?;
    Ok(Command { tag, body })
}

fn command_body(p: &mut Parser<'_>) -> PResult<CommandBody> {
    let start = p.pos;
    let name = p.atom_upper("command name")?;
    let simple = match name.as_str() {
        "CAPABILITY" => Some(CommandBody::Capability),
        "NOOP" => Some(CommandBody::Noop),
        "LOGOUT" => Some(CommandBody::Logout),
        "STARTTLS" => Some(CommandBody::StartTls),
        "NAMESPACE" => Some(CommandBody::Namespace),
        "IDLE" => Some(CommandBody::Idle),
        "CHECK" => Some(CommandBody::Check),
        "CLOSE" => Some(CommandBody::Close),
        "UNSELECT" => Some(CommandBody::Unselect),
        "EXPUNGE" => Some(CommandBody::Expunge(None)),
        _ => None,
    };
    if let Some(body) = simple {
        return Ok(body);
    }
    const WITH_ARGUMENTS: [&str; 20] = [
        "AUTHENTICATE",
        "LOGIN",
        "ENABLE",
        "SELECT",
        "EXAMINE",
        "CREATE",
        "DELETE",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "RENAME",
        "LIST",
        "LSUB",
        "STATUS",
        "APPEND",
        "SEARCH",
        "FETCH",
        "STORE",
        "COPY",
        "MOVE",
        "UID",
    ];
    if !WITH_ARGUMENTS.contains(&name.as_str()) && name != "ID" {
        p.pos = start;
        return p.err("command name");
    }
    p.sp()?;
    Ok(match name.as_str() {
        // authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp]
        // initial-resp = (base64 / "=")
        "AUTHENTICATE" => {
            let mechanism = p.atom_upper("SASL mechanism name")?;
            let initial = if p.peek() == Some(b' ') {
                p.pos += 1;
                if p.peek() == Some(b'=') {
                    p.pos += 1;
                    Some(Vec::new())
                } else {
                    let r = p.take_while(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
                    });
                    if r.is_empty() {
                        return p.err("base64 initial response or =");
                    }
                    Some(r.to_vec())
                }
            } else {
                None
            };
            CommandBody::Authenticate { mechanism, initial }
        }
        // login = "LOGIN" SP userid SP password
        "LOGIN" => {
            let username = p.astring("user name")?;
            p.sp()?;
            let password = p.astring("password")?;
            CommandBody::Login { username, password }
        }
        // enable = "ENABLE" 1*(SP capability)
        "ENABLE" => {
            let mut caps = vec![p.atom_upper("capability")?];
            while p.peek() == Some(b' ') {
                p.pos += 1;
                caps.push(p.atom_upper("capability")?);
            }
            CommandBody::Enable(caps)
        }
        // select  = "SELECT" SP mailbox [select-params]
        // examine = "EXAMINE" SP mailbox [select-params]
        // select-params = SP "(" select-param *(SP select-param) ")"
        // select-param  = select-param-name [SP select-param-value]
        "SELECT" | "EXAMINE" => {
            let mailbox = p.mailbox()?;
            let mut parameters = Vec::new();
            if p.peek() == Some(b' ') {
                p.pos += 1;
                parameters = p.list_of("select parameters", false, |p| {
                    let name = p.atom_upper("select parameter")?;
                    // A value is a number, a set or a parenthesised list, so
                    // "(CONDSTORE QRESYNC (..))" has two parameters.
                    let value = if p.peek() == Some(b' ')
                        && p.data
                            .get(p.pos + 1)
                            .is_some_and(|&b| b.is_ascii_digit() || matches!(b, b'(' | b'*' | b'$'))
                    {
                        p.pos += 1;
                        Some(p.tagged_ext_val(1)?)
                    } else {
                        None
                    };
                    Ok((name, value))
                })?;
            }
            CommandBody::Select {
                mailbox,
                read_only: name == "EXAMINE",
                parameters,
            }
        }
        "CREATE" => CommandBody::Create(p.mailbox()?),
        "DELETE" => CommandBody::Delete(p.mailbox()?),
        "SUBSCRIBE" => CommandBody::Subscribe(p.mailbox()?),
        "UNSUBSCRIBE" => CommandBody::Unsubscribe(p.mailbox()?),
        // rename = "RENAME" SP mailbox SP mailbox
        "RENAME" => {
            let from = p.mailbox()?;
            p.sp()?;
            let to = p.mailbox()?;
            CommandBody::Rename { from, to }
        }
        "LIST" => list(p)?,
        // lsub = "LSUB" SP mailbox SP list-mailbox
        "LSUB" => {
            let reference = p.mailbox()?;
            p.sp()?;
            let pattern = p.list_mailbox()?;
            CommandBody::Lsub { reference, pattern }
        }
        // status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"
        "STATUS" => {
            let mailbox = p.mailbox()?;
            p.sp()?;
            let items = p.list_of("status items", false, status_att)?;
            CommandBody::Status { mailbox, items }
        }
        "APPEND" => append(p)?,
        "SEARCH" => search_command(p, false)?,
        "FETCH" => fetch_command(p, false)?,
        "STORE" => store_command(p, false)?,
        "COPY" | "MOVE" => copy_command(p, false, &name)?,
        "UID" => {
            let sub = p.atom_upper("FETCH, STORE, SEARCH, COPY, MOVE or EXPUNGE")?;
            p.sp()?;
            match sub.as_str() {
                "FETCH" => fetch_command(p, true)?,
                "STORE" => store_command(p, true)?,
                "SEARCH" => search_command(p, true)?,
                "COPY" | "MOVE" => copy_command(p, true, &sub)?,
                // uid-expunge = "UID" SP "EXPUNGE" SP sequence-set
                "EXPUNGE" => CommandBody::Expunge(Some(p.sequence_set()?)),
                _ => {
                    p.pos = start + 4;
                    return p.err("FETCH, STORE, SEARCH, COPY, MOVE or EXPUNGE");
                }
            }
        }
        // id = "ID" SP id-params-list
        // id-params-list = "(" *(string SP nstring) ")" / nil
        "ID" => {
            if p.keyword("NIL") {
                CommandBody::Id(None)
            } else {
                let params = p.list_of("ID parameter list or NIL", true, |p| {
                    let s = p.pos;
                    let k = p.string("ID field name")?;
                    let k = p.utf8(s, k, "UTF-8 ID field")?;
                    p.sp()?;
                    let s = p.pos;
                    let v = match p.nstring("ID value")? {
                        Some(v) => Some(p.utf8(s, v, "UTF-8 ID value")?),
                        None => None,
                    };
                    Ok((k, v))
                })?;
                CommandBody::Id(Some(params))
            }
        }
        _ => {
            p.pos = start;
            return p.err("command name");
        }
    })
}

/// ```text
/// status-att      = "MESSAGES" / "UIDNEXT" / "UIDVALIDITY" /
///                   "UNSEEN" / "DELETED" / "SIZE" / "RECENT" / "HIGHESTMODSEQ"
/// ```
fn status_att(p: &mut Parser<'_>) -> PResult<String> {
    let start = p.pos;
    let a = p.atom_upper("status item")?;
    match a.as_str() {
        "MESSAGES" | "UIDNEXT" | "UIDVALIDITY" | "UNSEEN" | "DELETED" | "SIZE" | "RECENT"
        | "HIGHESTMODSEQ" | "APPENDLIMIT" => Ok(a),
        _ => {
            p.pos = start;
            p.err("status item")
        }
    }
}

/// ```text
/// list            = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
///                   [SP list-return-opts]
/// list-select-opts = "(" [ list-select-opt *(SP list-select-opt) ] ")"
/// list-select-opt = "SUBSCRIBED" / "REMOTE" / "RECURSIVEMATCH" / "SPECIAL-USE"
/// mbox-or-pat     = list-mailbox / patterns
/// patterns        = "(" list-mailbox *(SP list-mailbox) ")"
/// list-return-opts = "RETURN" SP "(" [list-return-opt *(SP list-return-opt)] ")"
/// list-return-opt = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" /
///                   "STATUS" SP "(" status-att *(SP status-att) ")"
/// ```
fn list(p: &mut Parser<'_>) -> PResult<CommandBody> {
    let mut selection = Vec::new();
    if p.peek() == Some(b'(') {
        selection = p.list_of("list selection options", true, |p| {
            p.atom_upper("list selection option")
        })?;
        p.sp()?;
    }
    let reference = p.mailbox()?;
    p.sp()?;
    let patterns = if p.peek() == Some(b'(') {
        p.list_of("mailbox patterns", false, |p| p.list_mailbox())?
    } else {
        vec![p.list_mailbox()?]
    };
    let mut returns = Vec::new();
    let mut status_items = Vec::new();
    if p.peek() == Some(b' ') {
        p.pos += 1;
        if !p.keyword("RETURN") {
            return p.err("RETURN");
        }
        p.sp()?;
        returns = p.list_of("list return options", true, |p| {
            let opt = p.atom_upper("list return option")?;
            if opt == "STATUS" {
                p.sp()?;
                status_items = p.list_of("status items", false, status_att)?;
            }
            Ok(opt)
        })?;
    }
    Ok(CommandBody::List {
        selection,
        reference,
        patterns,
        returns,
        status_items,
    })
}

/// ```text
/// append          = "APPEND" SP mailbox [SP flag-list] [SP date-time]
///                   SP literal
/// append-data     = literal / literal8 / append-data-ext
/// append-data     =/ "UTF8" SP "(" literal8 ")"          ; RFC 6855
/// ```
fn append(p: &mut Parser<'_>) -> PResult<CommandBody> {
    let mailbox = p.mailbox()?;
    p.sp()?;
    let mut flags = Vec::new();
    if p.peek() == Some(b'(') {
        flags = p.flag_list()?;
        p.sp()?;
    }
    let mut date = None;
    if p.peek() == Some(b'"') {
        date = Some(p.date_time()?);
        p.sp()?;
    }
    // RFC 6855 (UTF8=ACCEPT): append-data =/ "UTF8" SP "(" literal8 ")"
    let utf8 = p.keyword("UTF8");
    if utf8 {
        p.sp()?;
        p.byte(b'(', "( before the UTF8 literal8")?;
        if p.peek() != Some(b'~') {
            return p.err("literal8 (~{n}) after UTF8 (");
        }
    }
    let (message, binary) = p.literal(true, "message literal")?;
    if utf8 {
        p.byte(b')', ") after the UTF8 literal8")?;
    }
    Ok(CommandBody::Append {
        mailbox,
        flags,
        date,
        message,
        binary,
        utf8,
    })
}

/// ```text
/// search          = "SEARCH" [search-return-opts] SP search-program
/// search-return-opts = SP "RETURN" SP "(" [search-return-opt
///                   *(SP search-return-opt)] ")"
/// search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE"
/// search-program  = ["CHARSET" SP charset SP] search-key *(SP search-key)
///                   ;; CHARSET argument to SEARCH MUST be registered with IANA.
/// ```
fn search_command(p: &mut Parser<'_>, uid: bool) -> PResult<CommandBody> {
    let mut returns = None;
    if p.keyword("RETURN") {
        p.sp()?;
        returns = Some(p.list_of("search return options", true, |p| {
            let s = p.pos;
            let o = p.atom_upper("MIN, MAX, ALL, COUNT or SAVE")?;
            if !matches!(o.as_str(), "MIN" | "MAX" | "ALL" | "COUNT" | "SAVE") {
                p.pos = s;
                return p.err("MIN, MAX, ALL, COUNT or SAVE");
            }
            Ok(o)
        })?);
        p.sp()?;
    }
    let mut charset = None;
    if p.keyword("CHARSET") {
        p.sp()?;
        let s = p.pos;
        let c = p.astring("charset")?;
        charset = Some(p.utf8(s, c, "charset")?.to_ascii_uppercase());
        p.sp()?;
    }
    let key = super::search::search_program(p)?;
    Ok(CommandBody::Search {
        uid,
        charset,
        returns,
        key,
    })
}

/// ```text
/// fetch           = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" /
///                   fetch-att / "(" fetch-att *(SP fetch-att) ")")
///                   [fetch-modifiers]
/// fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"
/// fetch-modifier  = chgsince-fetch-mod        ; RFC 7162
/// chgsince-fetch-mod = "CHANGEDSINCE" SP mod-sequence-value
/// ```
fn fetch_command(p: &mut Parser<'_>, uid: bool) -> PResult<CommandBody> {
    let set = p.sequence_set()?;
    p.sp()?;
    let attrs = super::fetch::fetch_attrs(p)?;
    let mut changed_since = None;
    if p.peek() == Some(b' ') {
        p.pos += 1;
        let mods = p.list_of("fetch modifiers", false, |p| {
            if !p.keyword("CHANGEDSINCE") {
                return p.err("CHANGEDSINCE");
            }
            p.sp()?;
            p.number(i64::MAX as u64, "mod-sequence value")
        })?;
        changed_since = mods.last().copied();
    }
    Ok(CommandBody::Fetch {
        uid,
        set,
        attrs,
        changed_since,
    })
}

/// ```text
/// store           = "STORE" SP sequence-set [store-modifiers] SP store-att-flags
/// store-modifiers = SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"
/// store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP
///                   (flag-list / (flag *(SP flag)))
/// ```
fn store_command(p: &mut Parser<'_>, uid: bool) -> PResult<CommandBody> {
    let set = p.sequence_set()?;
    p.sp()?;
    let mut unchanged_since = None;
    if p.peek() == Some(b'(') {
        let mods = p.list_of("store modifiers", false, |p| {
            if !p.keyword("UNCHANGEDSINCE") {
                return p.err("UNCHANGEDSINCE");
            }
            p.sp()?;
            p.number(i64::MAX as u64, "mod-sequence value")
        })?;
        unchanged_since = mods.last().copied();
        p.sp()?;
    }
    let mode = match p.peek() {
        Some(b'+') => {
            p.pos += 1;
            StoreMode::Add
        }
        Some(b'-') => {
            p.pos += 1;
            StoreMode::Remove
        }
        _ => StoreMode::Set,
    };
    let silent = if p.keyword("FLAGS") {
        false
    } else if p.keyword("FLAGS.SILENT") {
        true
    } else {
        return p.err("FLAGS, +FLAGS or -FLAGS (optionally .SILENT)");
    };
    p.sp()?;
    let flags = if p.peek() == Some(b'(') {
        p.flag_list()?
    } else {
        let mut v = vec![p.flag()?];
        while p.peek() == Some(b' ') {
            p.pos += 1;
            v.push(p.flag()?);
        }
        v
    };
    Ok(CommandBody::Store {
        uid,
        set,
        mode,
        silent,
        flags,
        unchanged_since,
    })
}

/// ```text
/// copy            = "COPY" SP sequence-set SP mailbox
/// move            = "MOVE" SP sequence-set SP mailbox
/// ```
fn copy_command(p: &mut Parser<'_>, uid: bool, name: &str) -> PResult<CommandBody> {
    let set = p.sequence_set()?;
    p.sp()?;
    let mailbox = p.mailbox()?;
    Ok(if name == "MOVE" {
        CommandBody::Move { uid, set, mailbox }
    } else {
        CommandBody::Copy { uid, set, mailbox }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> CommandBody {
        match parse_command(input.as_bytes(), CommandLimits::default()) {
            Ok(c) => c.body,
            Err(e) => panic!("{input:?}: {e}"),
        }
    }

    fn bad(input: &str) -> (usize, String) {
        match parse_command(input.as_bytes(), CommandLimits::default()) {
            Ok(c) => panic!("{input:?} parsed as {c:?}"),
            Err(e) => (e.offset(), e.expected()),
        }
    }

    fn r(a: u32, b: u32) -> (SeqNumber, SeqNumber) {
        (Some(a), Some(b))
    }

    #[test]
    fn commands() {
        let s = |v: &str| v.to_string();
        let cases: Vec<(&str, CommandBody)> =
            vec![
            ("a CAPABILITY\r\n", CommandBody::Capability),
            ("a noop\r\n", CommandBody::Noop),
            (
                "a LOGIN {3}\r\nbob \"p\\\"w\"\r\n",
                CommandBody::Login {
                    username: b"bob".to_vec(),
                    password: b"p\"w".to_vec(),
                },
            ),
            (
                "a AUTHENTICATE PLAIN =\r\n",
                CommandBody::Authenticate {
                    mechanism: s("PLAIN"),
                    initial: Some(vec![]),
                },
            ),
            ("a select inbox\r\n", CommandBody::Select {
                mailbox: s("INBOX"),
                read_only: false,
                parameters: vec![],
            }),
            ("a EXAMINE x (CONDSTORE)\r\n", CommandBody::Select {
                mailbox: s("x"),
                read_only: true,
                parameters: vec![(s("CONDSTORE"), None)],
            }),
            (
                "a LIST (SUBSCRIBED) \"\" (\"*\" %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n",
                CommandBody::List {
                    selection: vec![s("SUBSCRIBED")],
                    reference: s(""),
                    patterns: vec![s("*"), s("%")],
                    returns: vec![s("CHILDREN"), s("STATUS")],
                    status_items: vec![s("MESSAGES"), s("UNSEEN")],
                },
            ),
            (
                "a APPEND saved (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {3+}\r\nabc\r\n",
                CommandBody::Append {
                    mailbox: s("saved"),
                    flags: vec![s("\\Seen")],
                    date: Some(DateTime {
                        date: Date { year: 1994, month: 2, day: 7 },
                        hour: 21,
                        minute: 52,
                        second: 25,
                        zone_minutes: -480,
                    }),
                    message: b"abc".to_vec(),
                    binary: false,
                    utf8: false,
                },
            ),
            (
                "a STORE 2:4 +FLAGS.SILENT (\\deleted)\r\n",
                CommandBody::Store {
                    uid: false,
                    set: SequenceSet::Ranges(vec![r(2, 4)]),
                    mode: StoreMode::Add,
                    silent: true,
                    flags: vec![s("\\Deleted")],
                    unchanged_since: None,
                },
            ),
            (
                "a SEARCH OR (FROM \"x\" 1:3) NOT SEEN\r\n",
                CommandBody::Search {
                    uid: false,
                    charset: None,
                    returns: None,
                    key: SearchKey::Or(
                        Box::new(SearchKey::And(vec![
                            SearchKey::Text {
                                field: TextField::From,
                                value: b"x".to_vec(),
                            },
                            SearchKey::Sequence(SequenceSet::Ranges(vec![r(1, 3)])),
                        ])),
                        Box::new(SearchKey::Not(Box::new(SearchKey::Flag {
                            flag: s("\\Seen"),
                            set: true,
                        }))),
                    ),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input), want, "{input}");
        }
    }

    #[test]
    fn fetch_attributes() {
        let CommandBody::Fetch { attrs, set, .. } =
            ok("a FETCH 1,3:* (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From to)]<0.100>)\r\n")
        else {
            panic!("not a fetch")
        };
        assert_eq!(
            set,
            SequenceSet::Ranges(vec![(Some(1), Some(1)), (Some(3), None)])
        );
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[1].name, "BODY");
        assert!(attrs[1].peek);
        assert_eq!(attrs[1].partial, Some((0, 100)));
        assert_eq!(
            attrs[1].section,
            Some(Section {
                part: vec![1, 2],
                text: Some(SectionText::HeaderFields(vec!["FROM".into(), "TO".into()])),
            })
        );
        let CommandBody::Fetch { attrs, .. } = ok("a FETCH $ FULL\r\n") else {
            panic!("not a fetch")
        };
        assert_eq!(attrs.len(), 5);
    }

    #[test]
    fn errors_name_argument_and_offset() {
        let cases: Vec<(&str, usize, &str)> = vec![
            ("", 0, "tag"),
            ("a\r\n", 1, "SP"),
            ("a FOO\r\n", 2, "command name"),
            ("a SELECT\r\n", 8, "SP"),
            ("a FETCH 0 FLAGS\r\n", 8, "sequence set"),
            ("a FETCH 1 BODYX\r\n", 10, "fetch attribute"),
            (
                "a SEARCH SINCE 30-Feb-2020\r\n",
                15,
                "valid day of the month",
            ),
            ("a LOGIN \"bob\r\n", 12, "closing DQUOTE"),
            ("a NOOP extra\r\n", 6, "end of command (CRLF)"),
            ("a LOGIN {-1}\r\n", 9, "literal size"),
            (
                "a STORE 1 FLAG x\r\n",
                10,
                "FLAGS, +FLAGS or -FLAGS (optionally .SILENT)",
            ),
        ];
        for (input, offset, expected) in cases {
            assert_eq!(bad(input), (offset, expected.to_string()), "{input}");
        }
    }

    #[test]
    fn limits() {
        let tight = CommandLimits {
            max_depth: 3,
            max_ranges: 2,
        };
        assert!(parse_command(b"a SEARCH NOT NOT SEEN\r\n", tight).is_ok());
        assert!(parse_command(b"a SEARCH NOT NOT NOT SEEN\r\n", tight).is_err());
        assert!(parse_command(b"a FETCH 1,2 UID\r\n", tight).is_ok());
        let e = parse_command(b"a FETCH 1,2,3 UID\r\n", tight);
        assert_eq!(
            e.map_err(|e| e.expected()),
            Err("fewer sequence ranges".into())
        );
        // Deep nesting is refused, not a stack overflow.
        let deep = format!(
            "a SEARCH {}ALL{}\r\n",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert!(parse_command(deep.as_bytes(), CommandLimits::default()).is_err());
        let ors = format!("a SEARCH {}ALL\r\n", "OR ALL ".repeat(100_000));
        assert!(parse_command(ors.as_bytes(), CommandLimits::default()).is_err());
    }
}
