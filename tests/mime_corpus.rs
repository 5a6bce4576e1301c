//! Robustness of message parsing over the shared MIME corpora.
//!
//! The corpora are `shared/vectors/mail-parser-corpus` (Dovecot's malformed
//! and third-party messages, RFC 2045 to 2049 and RFC 8621 examples) and
//! `shared/vectors/thunderbird-mime` (Thunderbird's MIME parser inputs).
//! Every message goes through `parse` and `parse_envelope` with LF and with
//! CRLF line ends, whole and cut short at many offsets. None may panic, and
//! the problems that `parse` reports must match the table below.

use std::{
    fs,
    path::{Path, PathBuf},
};

use wardmail::message::{attachment_content, parse, parse_envelope};

const CORPORA: [&str; 2] = ["mail-parser-corpus", "thunderbird-mime"];

const FROM: &str = "the From header is missing or unreadable";
const DATE: &str = "no Date header";
const TRUNCATED: &str = "the MIME structure is truncated";

/// Problems that `parse` reports for each file, with LF or CRLF line ends.
/// Files that are not listed must parse without problems.
///
/// Most mail-parser-corpus files and the Thunderbird `multipart*` files are
/// bare MIME structures with no From or Date header, hence FROM and DATE.
const EXPECTED_PROBLEMS: &[(&str, &[&str])] = &[
    // Multipart bodies whose parts have no content before the next boundary.
    ("mail-parser-corpus/malformed/000.eml", &[FROM, DATE]),
    // An inner multipart whose boundary "a" is a prefix of the outer "ab"
    // and whose closing line never comes.
    (
        "mail-parser-corpus/malformed/001.eml",
        &[FROM, DATE, TRUNCATED],
    ),
    // Declares a boundary that the body never uses.
    (
        "mail-parser-corpus/malformed/002.eml",
        &[
            FROM,
            DATE,
            "the message is multipart but its boundary never appears, \
             so its parts cannot be separated",
        ],
    ),
    // Nested multiparts that reuse their parent's boundary and never close.
    (
        "mail-parser-corpus/malformed/003.eml",
        &[FROM, DATE, TRUNCATED],
    ),
    (
        "mail-parser-corpus/malformed/004.eml",
        &[FROM, DATE, TRUNCATED],
    ),
    // Boundaries in odd places, but every multipart is closed.
    ("mail-parser-corpus/malformed/005.eml", &[FROM, DATE]),
    // Multiparts without closing boundary lines.
    (
        "mail-parser-corpus/malformed/006.eml",
        &[FROM, DATE, TRUNCATED],
    ),
    // The "--ab" line is read as a header line of part 1, so the part gets
    // a second Content-Type, and the inner multipart never closes.
    (
        "mail-parser-corpus/malformed/007.eml",
        &[
            FROM,
            DATE,
            "part 1 has 2 Content-Type headers; the last one is used",
            TRUNCATED,
        ],
    ),
    (
        "mail-parser-corpus/malformed/008.eml",
        &[FROM, DATE, TRUNCATED],
    ),
    (
        "mail-parser-corpus/malformed/009.eml",
        &[FROM, DATE, TRUNCATED],
    ),
    // message/rfc822 nested in message/rfc822 with no outer headers.
    ("mail-parser-corpus/malformed/010.eml", &[FROM, DATE]),
    (
        "mail-parser-corpus/malformed/011.eml",
        &[FROM, DATE, TRUNCATED],
    ),
    (
        "mail-parser-corpus/malformed/012.eml",
        &[FROM, DATE, TRUNCATED],
    ),
    (
        "mail-parser-corpus/malformed/013.eml",
        &[FROM, DATE, TRUNCATED],
    ),
    (
        "mail-parser-corpus/malformed/014.eml",
        &[FROM, DATE, TRUNCATED],
    ),
    (
        "mail-parser-corpus/malformed/016.eml",
        &[FROM, DATE, TRUNCATED],
    ),
    // "Content-Disposition: ;" puts the file name on a line of its own, so
    // the image is listed without its name.
    (
        "mail-parser-corpus/malformed/017.eml",
        &[DATE, "part 1 has an unreadable Content-Disposition header"],
    ),
    // Quoted-printable Windows-1252 text followed by unrelated XML. It
    // decodes without error.
    ("mail-parser-corpus/malformed/018.eml", &[FROM, DATE]),
    // A header section spliced into itself: "Fro :" is no From field and
    // Subject, Date and Message-ID appear twice.
    (
        "mail-parser-corpus/malformed/019.eml",
        &[
            "the message has 2 Subject headers; the last one is shown",
            "the message has 2 Date headers; the last one is used",
            "the message has 2 Message-ID headers; the last one is used",
            FROM,
        ],
    ),
    // A part with both a multipart/alternative and a text/plain
    // Content-Type.
    (
        "mail-parser-corpus/malformed/020.eml",
        &["part 1 has 2 Content-Type headers; the last one is used"],
    ),
    (
        "mail-parser-corpus/malformed/021.eml",
        &["part 1 has 2 Content-Type headers; the last one is used"],
    ),
    // A message/rfc822 attachment that contains plain text, not a message.
    (
        "mail-parser-corpus/malformed/022.eml",
        &[
            DATE,
            "part 2 is an attached message that cannot be read; kept as data",
        ],
    ),
    // The RFC 2049 example has prose where its audio and image base64 data
    // would be.
    (
        "mail-parser-corpus/rfc/000.eml",
        &[
            "part 4 has invalid base64 content; kept undecoded as an attachment",
            "part 5 has invalid base64 content; kept undecoded as an attachment",
        ],
    ),
    // "From: Whomever" and "Date: Whenever" from RFC 2046.
    (
        "mail-parser-corpus/rfc/001.eml",
        &[FROM, "the Date header cannot be read as a date"],
    ),
    ("mail-parser-corpus/rfc/002.eml", &[DATE]),
    // "From: Moderator-Address" has no address.
    ("mail-parser-corpus/rfc/004.eml", &[FROM]),
    ("mail-parser-corpus/rfc/006.eml", &[DATE]),
    ("mail-parser-corpus/rfc/007.eml", &[FROM, DATE]),
    ("mail-parser-corpus/rfc/008.eml", &[FROM, DATE]),
    ("mail-parser-corpus/thirdparty/000.eml", &[FROM, DATE]),
    ("mail-parser-corpus/thirdparty/001.eml", &[FROM, DATE]),
    // Base64 that goes on after its padding, then a part that is not
    // base64 at all.
    (
        "mail-parser-corpus/thirdparty/002.eml",
        &[
            FROM,
            DATE,
            "part 2 contains invalid characters; they are shown as replacement characters",
            "part 3 has invalid base64 content; shown undecoded",
        ],
    ),
    ("mail-parser-corpus/thirdparty/003.eml", &[FROM, DATE]),
    ("mail-parser-corpus/thirdparty/004.eml", &[FROM, DATE]),
    // EUC-JP needs mail-parser's full_encoding feature, which is off.
    (
        "mail-parser-corpus/thirdparty/005.eml",
        &[
            FROM,
            DATE,
            "part 4 declares charset EUC-JP, which cannot be decoded; \
             shown as UTF-8 with replacement characters",
        ],
    ),
    ("mail-parser-corpus/thirdparty/006.eml", &[FROM, DATE]),
    ("mail-parser-corpus/thirdparty/007.eml", &[DATE]),
    ("mail-parser-corpus/thirdparty/009.eml", &[FROM, DATE]),
    ("mail-parser-corpus/thirdparty/010.eml", &[FROM, DATE]),
    // Only the enclosed messages have From fields.
    ("mail-parser-corpus/thirdparty/013.eml", &[FROM]),
    // "bad-charset" is no charset; the plain part has a windows-1252 byte.
    (
        "thunderbird-mime/bad-charset.eml",
        &[
            "part 1 declares charset bad-charset, which cannot be decoded; \
             shown as UTF-8 with replacement characters",
            "part 2 declares charset bad-charset, which cannot be decoded; shown as UTF-8",
        ],
    ),
    ("thunderbird-mime/bare-text-type.eml", &[DATE]),
    ("thunderbird-mime/html-entities-and-styles.eml", &[DATE]),
    // ISO-2022-JP needs mail-parser's full_encoding feature, which is off.
    (
        "thunderbird-mime/iso-2022-jp-not-qp.eml",
        &["the message declares charset ISO-2022-JP, which cannot be decoded; shown as UTF-8"],
    ),
    (
        "thunderbird-mime/iso-2022-jp-qp.eml",
        &["the message declares charset ISO-2022-JP, which cannot be decoded; shown as UTF-8"],
    ),
    ("thunderbird-mime/mail-without-from", &[FROM, DATE]),
    ("thunderbird-mime/multipart-base64-1", &[FROM, DATE]),
    ("thunderbird-mime/multipart-base64-2", &[FROM, DATE]),
    ("thunderbird-mime/multipart-base64-3", &[FROM, DATE]),
    // The application/octet-stream part ends in "=='", which is not base64.
    (
        "thunderbird-mime/multipart-complex1",
        &[
            FROM,
            DATE,
            "part 1 has invalid base64 content; kept undecoded as an attachment",
        ],
    ),
    ("thunderbird-mime/multipart-complex2", &[FROM, DATE]),
    ("thunderbird-mime/multipart1", &[FROM, DATE]),
    ("thunderbird-mime/multipart2", &[FROM, DATE]),
    ("thunderbird-mime/multipart3", &[FROM, DATE]),
    ("thunderbird-mime/multipart4", &[FROM, DATE]),
    ("thunderbird-mime/no-content-type.eml", &[DATE]),
];

/// Returns the folder of the shared test vectors, which sits next to the
/// crate folder in a checkout and in CI alike.
fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors")
}

/// Returns every message of the corpora as (path relative to the vectors
/// folder, bytes), sorted by path. Messages are `*.eml` files and files
/// without an extension.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = vectors_dir();
    let mut paths = Vec::new();
    for corpus in CORPORA {
        collect_files(&root.join(corpus), &mut paths);
    }
    paths.sort();

    let messages: Vec<(String, Vec<u8>)> = paths
        .into_iter()
        .filter(|path| path.extension().is_none_or(|extension| extension == "eml"))
        .map(|path| {
            let bytes = fs::read(&path).unwrap_or_else(|error| {
                panic!("cannot read {}: {error}", path.display());
            });
            let name = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            (name, bytes)
        })
        .collect();
    assert!(
        messages.len() > 70,
        "found only {} messages under {}; the corpora must be there",
        messages.len(),
        root.display()
    );
    messages
}

fn collect_files(dir: &Path, paths: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|error| {
        panic!("cannot list {}: {error}", dir.display());
    });
    for entry in entries {
        let path = entry.unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
        let path = path.path();
        if path.is_dir() {
            collect_files(&path, paths);
        } else {
            paths.push(path);
        }
    }
}

fn with_lf(raw: &[u8]) -> Vec<u8> {
    raw.iter().copied().filter(|&byte| byte != b'\r').collect()
}

fn with_crlf(raw: &[u8]) -> Vec<u8> {
    let mut converted = Vec::with_capacity(raw.len() + raw.len() / 20);
    for &byte in &with_lf(raw) {
        if byte == b'\n' {
            converted.push(b'\r');
        }
        converted.push(byte);
    }
    converted
}

/// Cut points: the ends of the input, quarters, the blank line after the
/// header section and every 13th byte.
fn cut_offsets(raw: &[u8]) -> Vec<usize> {
    let length = raw.len();
    let mut offsets = vec![
        0,
        1,
        length / 4,
        length / 2,
        length * 3 / 4,
        length.saturating_sub(1),
    ];
    if let Some(at) = raw.windows(2).position(|pair| pair == b"\n\n") {
        offsets.extend([at, at + 1]);
    }
    if let Some(at) = raw.windows(4).position(|quad| quad == b"\r\n\r\n") {
        offsets.extend([at, at + 2, at + 3]);
    }
    offsets.extend((0..length).step_by(13));
    offsets.retain(|&offset| offset <= length);
    offsets.sort_unstable();
    offsets.dedup();
    offsets
}

#[test]
fn corpus_problems_match_table() {
    let mut mismatches = Vec::new();

    for (name, raw) in corpus() {
        let expected: Vec<&str> = EXPECTED_PROBLEMS
            .iter()
            .find(|(file, _)| *file == name)
            .map(|(_, problems)| problems.to_vec())
            .unwrap_or_default();
        for (line_ends, variant) in [("LF", with_lf(&raw)), ("CRLF", with_crlf(&raw))] {
            let problems = parse(&variant).problems;
            if problems != expected {
                mismatches.push(format!("{name} ({line_ends}): {problems:?}"));
            }
        }
    }

    assert!(
        mismatches.is_empty(),
        "unexpected problems:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn corpus_table_names_real_files() {
    let names: Vec<String> = corpus().into_iter().map(|(name, _)| name).collect();

    for (file, _) in EXPECTED_PROBLEMS {
        assert!(
            names.iter().any(|name| name == file),
            "{file} is not in the corpus"
        );
    }
}

#[test]
fn corpus_parses_both_line_ends() {
    for (name, raw) in corpus() {
        for variant in [with_lf(&raw), with_crlf(&raw)] {
            let parsed = parse(&variant);
            let envelope = parse_envelope(&variant);

            assert_eq!(envelope, parsed.envelope, "{name}");
            for attachment in &parsed.attachments {
                let content = attachment_content(&variant, attachment.index);
                let size = content.map(|bytes| bytes.len());
                assert_eq!(
                    size,
                    Some(attachment.size),
                    "{name}: {}",
                    attachment.filename
                );
            }
        }
    }
}

#[test]
fn corpus_truncations_parse() {
    for (name, raw) in corpus() {
        for variant in [with_lf(&raw), with_crlf(&raw)] {
            for offset in cut_offsets(&variant) {
                let cut = &variant[..offset];
                let parsed = parse(cut);
                let envelope = parse_envelope(cut);

                // Output stays bounded: no input byte becomes more than one
                // three-byte UTF-8 character.
                assert!(
                    envelope.subject.len() <= cut.len() * 3,
                    "{name} cut at {offset}"
                );
                assert!(parsed.text.len() <= cut.len() * 3, "{name} cut at {offset}");
            }
        }
    }
}

#[test]
fn corpus_documented_content() {
    let corpus = corpus();
    let message = |file: &str| {
        let (_, raw) = corpus
            .iter()
            .find(|(name, _)| name == file)
            .unwrap_or_else(|| panic!("{file} is not in the corpus"));
        parse(raw)
    };

    // A bare "Content-Type: text" and a missing Content-Type are plain text.
    assert!(
        message("thunderbird-mime/bare-text-type.eml")
            .text
            .contains("waldo")
    );
    assert!(
        message("thunderbird-mime/no-content-type.eml")
            .text
            .contains("waldo")
    );

    // A soft line break at the very end of a quoted-printable body.
    let plain = message("thunderbird-mime/qp-trailing-equals-plain.eml");
    let html = message("thunderbird-mime/qp-trailing-equals-html.eml");
    assert!(plain.text.contains("qptrailingplain"), "{:?}", plain.text);
    assert!(html.text.contains("qptrailinghtml"), "{:?}", html.text);

    // Attribute values of a tag split across lines are not text.
    let split = message("thunderbird-mime/HTML-with-split-tag1.eml");
    assert!(
        split.text.contains("ShouldFindThisAgain"),
        "{:?}",
        split.text
    );
    assert!(
        !split.text.contains("ShouldNotFindThis"),
        "{:?}",
        split.text
    );
    assert!(
        !split.text.contains("ShouldntFindThisEither"),
        "{:?}",
        split.text
    );
    assert!(!split.text.contains("ShouldntFindHref"), "{:?}", split.text);

    // The plain alternative wins, so the sibling HTML part is not shown.
    let alternative = message("thunderbird-mime/HTML-with-split-tag2.eml");
    assert_eq!(alternative.text, "Text part");

    // A Sender other than From is kept for "on behalf of".
    let sender = message("thunderbird-mime/SenderHeader").sender;
    assert_eq!(
        sender.map(|address| address.email),
        Some("iamthesender@example.com".into())
    );

    // Base64 with blank lines inside still decodes.
    let whitespace = message("thunderbird-mime/base64-with-whitespace.eml");
    assert_eq!(whitespace.text, "abcdefghijklmnopqrstuvwxyz");
    assert_eq!(whitespace.attachments[0].filename, "test.txt");

    // Each multipart-message file encloses one message/rfc822 part.
    for number in 1..=4 {
        let parsed = message(&format!("thunderbird-mime/multipart-message-{number}.eml"));
        let types: Vec<&str> = parsed
            .attachments
            .iter()
            .map(|a| a.content_type.as_str())
            .collect();
        assert_eq!(types, ["message/rfc822"], "multipart-message-{number}");
    }

    // Text inside <head> is moved to the body by HTML parsers.
    let head = message("thunderbird-mime/multipart-base64-2");
    assert_eq!(
        head.text,
        "base64encoded HTML text inside a multipart message."
    );
}
