//! PIDF (RFC 3863), as much as presence between people needs: whether a presentity is open
//! (reachable) or closed, and a note ("in a meeting"). Documents we send are written here;
//! the ones a device PUBLISHes are read with quick-xml and refused (400) when they are not a
//! PIDF with at least one tuple's basic status.

use quick_xml::Reader;
use quick_xml::events::Event;

/// The PIDF namespace.
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:pidf";
/// Its media type.
pub const CONTENT_TYPE: &str = "application/pidf+xml";
/// Longest note kept (longer ones are cut at a character boundary).
const NOTE_MAX: usize = 256;

/// What a presentity's presence says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// Reachable (`open`) or not (`closed`).
    pub open: bool,
    /// The note its user set, if any.
    pub note: Option<String>,
}

/// Why a PUBLISHed body is not taken (the 400's reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PidfError {
    /// Not well-formed XML.
    #[error("PIDF is not well-formed XML: {0}")]
    Xml(String),
    /// The root is not a PIDF `presence` element.
    #[error("not a PIDF document (root must be <presence xmlns=\"{NAMESPACE}\">)")]
    NotPidf,
    /// No tuple says open or closed.
    #[error("PIDF without a tuple's <basic>open</basic> or <basic>closed</basic>")]
    NoBasic,
}

/// `text` with the five XML special characters escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The document for `entity` (`sip:user@domain`) with `status`.
pub fn document(entity: &str, status: &Status) -> String {
    let basic = if status.open { "open" } else { "closed" };
    let note = status
        .note
        .as_deref()
        .map(|n| format!("<note>{}</note>", escape(n)))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <presence xmlns=\"{NAMESPACE}\" entity=\"{}\">\n\
         <tuple id=\"openline\"><status><basic>{basic}</basic></status>{note}</tuple>\n\
         </presence>\n",
        escape(entity)
    )
}

/// Reads a PUBLISHed document: the first tuple's basic status and the first note (of the
/// presence or a tuple).
pub fn parse(body: &[u8]) -> Result<Status, PidfError> {
    let mut reader = Reader::from_reader(body);
    let mut buf = Vec::new();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut root_checked = false;
    let (mut basic, mut note): (Option<bool>, Option<String>) = (None, None);
    let mut text = String::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let name = e.local_name().as_ref().to_vec();
                if !root_checked {
                    let namespace_ok = e.attributes().flatten().any(|a| {
                        a.key.as_ref().starts_with(b"xmlns")
                            && a.value.as_ref() == NAMESPACE.as_bytes()
                    });
                    if name != b"presence" || !namespace_ok {
                        return Err(PidfError::NotPidf);
                    }
                    root_checked = true;
                }
                path.push(name);
                text.clear();
            }
            Ok(Event::Empty(_)) if !root_checked => return Err(PidfError::NotPidf),
            Ok(Event::End(_)) => {
                // An element's text comes in pieces (text, entity references): read it whole.
                let whole = std::mem::take(&mut text);
                match path.last().map(Vec::as_slice) {
                    Some(b"basic") if basic.is_none() => match whole.trim() {
                        "open" => basic = Some(true),
                        "closed" => basic = Some(false),
                        _ => {}
                    },
                    Some(b"note") if note.is_none() => {
                        // XML allows no control characters in text, so a note never carries
                        // them (document() drops them too: what is read is what is sent on).
                        let kept: String = whole.chars().filter(|c| !c.is_control()).collect();
                        let mut n = kept.trim().to_string();
                        if n.len() > NOTE_MAX {
                            let mut cut = NOTE_MAX;
                            while !n.is_char_boundary(cut) {
                                cut -= 1;
                            }
                            n.truncate(cut);
                            // The cut may leave white space at the end, which reading trims.
                            n.truncate(n.trim_end().len());
                        }
                        note = Some(n);
                    }
                    _ => {}
                }
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let piece = t.decode().map_err(|e| PidfError::Xml(e.to_string()))?;
                let piece = quick_xml::escape::unescape(&piece)
                    .map_err(|e| PidfError::Xml(e.to_string()))?;
                text.push_str(&piece);
            }
            Ok(Event::GeneralRef(r)) => {
                let reference = format!("&{};", String::from_utf8_lossy(&r));
                let piece = quick_xml::escape::unescape(&reference)
                    .map_err(|e| PidfError::Xml(e.to_string()))?;
                text.push_str(&piece);
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(PidfError::Xml(e.to_string())),
        }
        buf.clear();
    }
    if !root_checked {
        return Err(PidfError::NotPidf);
    }
    if !path.is_empty() {
        return Err(PidfError::Xml("unclosed elements at the end".into()));
    }
    let open = basic.ok_or(PidfError::NoBasic)?;
    Ok(Status { open, note })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn control_characters_in_a_note_are_dropped_as_when_written() {
        // Found by the pidf fuzz target: read with them, written without; and a long note
        // cut after a space read back without it.
        let long = format!(
            "<presence xmlns=\"{NAMESPACE}\"><tuple id=\"t\"><status><basic>open</basic>\
             </status><note>{}</note></tuple></presence>",
            "a ".repeat(NOTE_MAX)
        );
        let status = parse(long.as_bytes()).unwrap();
        assert_eq!(
            parse(document("sip:a@b", &status).as_bytes()).unwrap(),
            status
        );
        let doc = format!(
            "<presence xmlns=\"{NAMESPACE}\" entity=\"sip:a@b\"><tuple id=\"t\"><status>\
             <basic>open</basic></status><note>In a m\u{1f}\u{0}eeting \u{0}</note></tuple></presence>"
        );
        let status = parse(doc.as_bytes()).unwrap();
        assert_eq!(status.note.as_deref(), Some("In a meeting"));
        assert_eq!(
            parse(document("sip:a@b", &status).as_bytes()).unwrap(),
            status
        );
    }

    #[test]
    fn what_we_write_reads_back() {
        let status = Status {
            open: true,
            note: Some("in a <meeting> & busy".into()),
        };
        let doc = document("sip:bob@club-b.test", &status);
        assert!(doc.contains("<basic>open</basic>"));
        assert!(doc.contains("in a &lt;meeting&gt; &amp; busy"));
        assert_eq!(parse(doc.as_bytes()).unwrap(), status);
        let closed = Status::default();
        assert_eq!(
            parse(document("sip:x@y", &closed).as_bytes()).unwrap(),
            closed
        );
    }

    #[test]
    fn a_baresip_style_document_with_prefixes_reads() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:alice@a.test">
 <tuple id="t1"><status><basic>closed</basic></status></tuple>
 <dm:person id="p1"><note>out for lunch</note></dm:person>
</presence>"#;
        assert_eq!(
            parse(doc).unwrap(),
            Status {
                open: false,
                note: Some("out for lunch".into())
            }
        );
    }

    #[test]
    fn malformed_documents_are_refused_with_a_reason() {
        assert!(matches!(
            parse(b"<presence"),
            Err(PidfError::Xml(_)) | Err(PidfError::NotPidf)
        ));
        assert_eq!(parse(b"<html></html>"), Err(PidfError::NotPidf));
        assert_eq!(
            parse(b"<presence></presence>"),
            Err(PidfError::NotPidf),
            "no namespace"
        );
        assert_eq!(
            parse(br#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple id="a"><status><basic>maybe</basic></status></tuple></presence>"#),
            Err(PidfError::NoBasic)
        );
        assert!(parse(br#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple>"#).is_err());
        assert_eq!(parse(b""), Err(PidfError::NotPidf));
        let long = format!(
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple id="a"><status><basic>open</basic></status><note>{}</note></tuple></presence>"#,
            "é".repeat(300)
        );
        assert!(parse(long.as_bytes()).unwrap().note.unwrap().len() <= NOTE_MAX);
    }
}
