//! Python face of `imap/`: `ImapFragmenter`, `imap_parse_command`, `imap_command_tag`.
//!
//! Parsed commands and framing events are the frozen dataclasses of
//! `mailcore/imap/command.py`, built here by calling the classes: the typed
//! shape lives in one place (Python, checked by mypy), and a state machine
//! can `match` on ordinary classes. The module is imported once per
//! interpreter, at first use (it imports `_core` itself, so not at load).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyModule, PyTuple};

use super::buffer::bytes_of;
use super::errors::to_py;
use crate::imap::command::{
    self, CommandBody, CommandLimits, DateField, FetchAttr, SearchKey, Section, SectionText,
    SequenceSet, StoreMode, TextField, When,
};
use crate::imap::fragment::{self, Fragment, PoisonReason};

static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn cls<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    MODULE
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("mailcore.imap.command")?.unbind())
        })?
        .bind(py)
        .getattr(name)
}

fn tag_str(tag: Option<Vec<u8>>) -> Option<String> {
    tag.map(|t| String::from_utf8_lossy(&t).into_owned())
}

fn strs<'py>(py: Python<'py>, v: &[String]) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, v)
}

fn seq<'py>(py: Python<'py>, set: &SequenceSet) -> PyResult<Bound<'py, PyAny>> {
    match set {
        SequenceSet::Saved => cls(py, "SequenceSet")?.call1((PyTuple::empty(py), true)),
        SequenceSet::Ranges(r) => cls(py, "SequenceSet")?.call1((PyTuple::new(py, r)?, false)),
    }
}

fn date<'py>(py: Python<'py>, d: command::Date) -> PyResult<Bound<'py, PyAny>> {
    py.import("datetime")?
        .getattr("date")?
        .call1((d.year, d.month, d.day))
}

fn section<'py>(py: Python<'py>, s: &Section) -> PyResult<Bound<'py, PyAny>> {
    let (text, fields): (Option<&str>, &[String]) = match &s.text {
        None => (None, &[]),
        Some(SectionText::Header) => (Some("HEADER"), &[]),
        Some(SectionText::HeaderFields(f)) => (Some("HEADER.FIELDS"), f),
        Some(SectionText::HeaderFieldsNot(f)) => (Some("HEADER.FIELDS.NOT"), f),
        Some(SectionText::Text) => (Some("TEXT"), &[]),
        Some(SectionText::Mime) => (Some("MIME"), &[]),
    };
    cls(py, "Section")?.call1((PyTuple::new(py, &s.part)?, text, strs(py, fields)?))
}

fn fetch_attr<'py>(py: Python<'py>, a: &FetchAttr) -> PyResult<Bound<'py, PyAny>> {
    let sec = match &a.section {
        Some(s) => Some(section(py, s)?),
        None => None,
    };
    cls(py, "FetchAttribute")?.call1((a.name, sec, a.partial, a.peek))
}

fn search_key<'py>(py: Python<'py>, k: &SearchKey) -> PyResult<Bound<'py, PyAny>> {
    match k {
        SearchKey::All => cls(py, "SearchAll")?.call0(),
        SearchKey::Flag { flag, set } => cls(py, "SearchFlag")?.call1((flag, *set)),
        SearchKey::Date {
            field,
            when,
            date: d,
        } => {
            let field = match field {
                DateField::Internal => "internal",
                DateField::Sent => "sent",
            };
            let when = match when {
                When::Before => "before",
                When::On => "on",
                When::Since => "since",
            };
            cls(py, "SearchDate")?.call1((field, when, date(py, *d)?))
        }
        SearchKey::Size { larger, size } => cls(py, "SearchSize")?.call1((*larger, *size)),
        SearchKey::Text { field, value } => {
            let field = match field {
                TextField::Bcc => "BCC",
                TextField::Body => "BODY",
                TextField::Cc => "CC",
                TextField::From => "FROM",
                TextField::Subject => "SUBJECT",
                TextField::Text => "TEXT",
                TextField::To => "TO",
            };
            cls(py, "SearchText")?.call1((field, PyBytes::new(py, value)))
        }
        SearchKey::Header { name, value } => {
            cls(py, "SearchHeader")?.call1((name, PyBytes::new(py, value)))
        }
        SearchKey::Sequence(s) => cls(py, "SearchSequence")?.call1((seq(py, s)?,)),
        SearchKey::Uid(s) => cls(py, "SearchUid")?.call1((seq(py, s)?,)),
        SearchKey::Not(k) => cls(py, "SearchNot")?.call1((search_key(py, k)?,)),
        SearchKey::Or(a, b) => cls(py, "SearchOr")?.call1((search_key(py, a)?, search_key(py, b)?)),
        SearchKey::And(keys) => {
            let items = keys
                .iter()
                .map(|k| search_key(py, k))
                .collect::<PyResult<Vec<_>>>()?;
            cls(py, "SearchAnd")?.call1((PyTuple::new(py, items)?,))
        }
    }
}

fn command_to_py<'py>(py: Python<'py>, c: command::Command) -> PyResult<Bound<'py, PyAny>> {
    let tag = c.tag;
    let simple = |name: &str| cls(py, name)?.call1((&tag,));
    match c.body {
        CommandBody::Capability => simple("Capability"),
        CommandBody::Noop => simple("Noop"),
        CommandBody::Logout => simple("Logout"),
        CommandBody::StartTls => simple("StartTLS"),
        CommandBody::Namespace => simple("Namespace"),
        CommandBody::Idle => simple("Idle"),
        CommandBody::Check => simple("Check"),
        CommandBody::Close => simple("Close"),
        CommandBody::Unselect => simple("Unselect"),
        CommandBody::Authenticate { mechanism, initial } => {
            cls(py, "Authenticate")?.call1((&tag, mechanism, initial.map(|i| PyBytes::new(py, &i))))
        }
        CommandBody::Login { username, password } => cls(py, "Login")?.call1((
            &tag,
            PyBytes::new(py, &username),
            PyBytes::new(py, &password),
        )),
        CommandBody::Enable(caps) => cls(py, "Enable")?.call1((&tag, strs(py, &caps)?)),
        CommandBody::Select {
            mailbox,
            read_only,
            parameters,
        } => {
            let params = parameters
                .iter()
                .map(|(n, v)| (n, v.as_ref().map(|v| PyBytes::new(py, v))))
                .collect::<Vec<_>>();
            cls(py, "Select")?.call1((&tag, mailbox, read_only, PyTuple::new(py, params)?))
        }
        CommandBody::Create(m) => cls(py, "Create")?.call1((&tag, m)),
        CommandBody::Delete(m) => cls(py, "Delete")?.call1((&tag, m)),
        CommandBody::Subscribe(m) => cls(py, "Subscribe")?.call1((&tag, m)),
        CommandBody::Unsubscribe(m) => cls(py, "Unsubscribe")?.call1((&tag, m)),
        CommandBody::Rename { from, to } => cls(py, "Rename")?.call1((&tag, from, to)),
        CommandBody::List {
            selection,
            reference,
            patterns,
            returns,
            status_items,
        } => cls(py, "List")?.call1((
            &tag,
            reference,
            strs(py, &patterns)?,
            strs(py, &selection)?,
            strs(py, &returns)?,
            strs(py, &status_items)?,
        )),
        CommandBody::Lsub { reference, pattern } => {
            cls(py, "Lsub")?.call1((&tag, reference, pattern))
        }
        CommandBody::Status { mailbox, items } => {
            cls(py, "Status")?.call1((&tag, mailbox, strs(py, &items)?))
        }
        CommandBody::Append {
            mailbox,
            flags,
            date: when,
            message,
            binary,
            utf8,
        } => {
            let when = match when {
                Some(d) => Some(cls(py, "_datetime")?.call1((
                    (
                        d.date.year,
                        d.date.month,
                        d.date.day,
                        d.hour,
                        d.minute,
                        d.second,
                    ),
                    d.zone_minutes,
                ))?),
                None => None,
            };
            cls(py, "Append")?.call1((
                &tag,
                mailbox,
                strs(py, &flags)?,
                when,
                PyBytes::new(py, &message),
                binary,
                utf8,
            ))
        }
        CommandBody::Expunge(uids) => {
            let uids = match uids {
                Some(s) => Some(seq(py, &s)?),
                None => None,
            };
            cls(py, "Expunge")?.call1((&tag, uids))
        }
        CommandBody::Search {
            uid,
            charset,
            returns,
            key,
        } => {
            let returns = match returns {
                Some(r) => Some(strs(py, &r)?),
                None => None,
            };
            cls(py, "Search")?.call1((&tag, uid, charset, returns, search_key(py, &key)?))
        }
        CommandBody::Fetch {
            uid,
            set,
            attrs,
            changed_since,
        } => {
            let attrs = attrs
                .iter()
                .map(|a| fetch_attr(py, a))
                .collect::<PyResult<Vec<_>>>()?;
            cls(py, "Fetch")?.call1((
                &tag,
                uid,
                seq(py, &set)?,
                PyTuple::new(py, attrs)?,
                changed_since,
            ))
        }
        CommandBody::Store {
            uid,
            set,
            mode,
            silent,
            flags,
            unchanged_since,
        } => {
            let mode = match mode {
                StoreMode::Set => "set",
                StoreMode::Add => "add",
                StoreMode::Remove => "remove",
            };
            cls(py, "Store")?.call1((
                &tag,
                uid,
                seq(py, &set)?,
                mode,
                silent,
                strs(py, &flags)?,
                unchanged_since,
            ))
        }
        CommandBody::Copy { uid, set, mailbox } => {
            cls(py, "Copy")?.call1((&tag, uid, seq(py, &set)?, mailbox))
        }
        CommandBody::Move { uid, set, mailbox } => {
            cls(py, "Move")?.call1((&tag, uid, seq(py, &set)?, mailbox))
        }
        CommandBody::Id(params) => {
            let params = match params {
                Some(p) => Some(PyTuple::new(py, p)?),
                None => None,
            };
            cls(py, "Id")?.call1((&tag, params))
        }
    }
}

/// Parse one whole IMAP command (as `ImapFragmenter` returns it).
#[pyfunction]
#[pyo3(signature = (data, max_depth = 32, max_ranges = 10000))]
fn imap_parse_command<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    max_depth: usize,
    max_ranges: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let bytes = bytes_of(data)?;
    let limits = CommandLimits {
        max_depth,
        max_ranges,
    };
    let parsed = command::parse_command(&bytes, limits).map_err(to_py)?;
    command_to_py(py, parsed)
}

/// The tag at the start of a command, if it is a valid tag.
#[pyfunction]
fn imap_command_tag(data: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    Ok(tag_str(fragment::leading_tag(&bytes_of(data)?)))
}

/// Cut an IMAP byte stream into whole commands; see `imap/fragment.rs`.
#[pyclass(module = "mailcore._core")]
pub struct ImapFragmenter {
    inner: fragment::Fragmenter,
}

fn reason_name(reason: PoisonReason) -> &'static str {
    match reason {
        PoisonReason::CommandTooLong => "command-too-long",
        PoisonReason::LiteralTooLong => "literal-too-long",
        PoisonReason::BadLiteral => "bad-literal",
    }
}

fn fragment_to_py<'py>(py: Python<'py>, f: Fragment) -> PyResult<Bound<'py, PyAny>> {
    match f {
        Fragment::Command(data) => cls(py, "CommandReady")?.call1((PyBytes::new(py, &data),)),
        Fragment::Line(data) => cls(py, "RawLine")?.call1((PyBytes::new(py, &data),)),
        Fragment::LiteralAnnounced {
            tag,
            length,
            binary,
            fits,
        } => cls(py, "LiteralAnnounced")?.call1((tag_str(tag), length, binary, fits)),
        Fragment::Poisoned { tag, reason } => {
            cls(py, "Poisoned")?.call1((tag_str(tag), reason_name(reason)))
        }
    }
}

#[pymethods]
impl ImapFragmenter {
    #[new]
    fn new(max_command: usize, max_literal: u64) -> Self {
        ImapFragmenter {
            inner: fragment::Fragmenter::new(max_command, max_literal),
        }
    }

    /// The work is done in `__new__`; this states the signature for Python tools.
    fn __init__(&self, max_command: usize, max_literal: u64) {
        let _ = (max_command, max_literal);
    }

    /// Add received bytes; then call `next()` until it returns None.
    fn feed(&mut self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.feed(&bytes_of(data)?);
        Ok(())
    }

    /// The next fragment, or None when more input or a literal decision is needed.
    fn next<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.next().map(|f| fragment_to_py(py, f)).transpose()
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.next(py)
    }

    /// Read the announced synchronising literal (after sending "+ ...").
    fn accept_literal(&mut self) -> PyResult<()> {
        self.inner
            .accept_literal()
            .map_err(|_| PyRuntimeError::new_err("no literal is waiting for a decision"))
    }

    /// Refuse the announced literal (after a tagged NO/BAD); the command ends.
    fn reject_literal(&mut self) -> PyResult<()> {
        self.inner
            .reject_literal()
            .map_err(|_| PyRuntimeError::new_err("no literal is waiting for a decision"))
    }

    /// Return the next line raw (IDLE "DONE", an AUTHENTICATE response).
    fn expect_line(&mut self) {
        self.inner.expect_line();
    }

    /// Whether a synchronising literal waits for accept/reject.
    #[getter]
    fn awaiting_decision(&self) -> bool {
        self.inner.awaiting_decision()
    }

    /// Bytes received and not yet returned.
    #[getter]
    fn pending(&self) -> usize {
        self.inner.pending()
    }

    /// Change the bounds for the commands still to come (IMAP raises them at login).
    fn set_limits(&mut self, max_command: usize, max_literal: u64) {
        self.inner.set_limits(max_command, max_literal);
    }

    /// Why the command being read is skipped ("literal-too-long", ...), or None.
    #[getter]
    fn poisoned(&self) -> Option<&'static str> {
        self.inner.poison().map(reason_name)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ImapFragmenter>()?;
    m.add_function(wrap_pyfunction!(imap_parse_command, m)?)?;
    m.add_function(wrap_pyfunction!(imap_command_tag, m)?)?;
    Ok(())
}
