//! The audit log as CSV (RFC 4180) and JSON, for auditors and scripts.

use std::io::{self, Write};

use super::AuditRecord;

const CSV_HEADER: &[&str] = &[
    "seq",
    "time",
    "time_utc",
    "account",
    "kind",
    "message_id",
    "recipients",
    "decision",
    "override_reason",
    "outcome",
    "details",
    "prev_hash",
    "hash",
];

/// Writes the records as a JSON array, each with its hashes.
pub fn write_json(records: &[AuditRecord], mut output: impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut output, records)?;
    output.write_all(b"\n")
}

/// Writes the records as CSV with a header row and CRLF line ends (RFC
/// 4180). Each recipient is `address method (evidence): outcome`, and
/// recipients are separated by "; "; details are `name=value` pairs joined
/// the same way.
///
/// A field that starts with `=`, `+`, `-`, `@`, a tab or a carriage return
/// gets a leading `'`, so a spreadsheet shows it as text instead of running
/// it as a formula. Such a field then differs from the stored entry; use
/// the JSON export to check hashes.
pub fn write_csv(records: &[AuditRecord], mut output: impl Write) -> io::Result<()> {
    write_row(&mut output, CSV_HEADER.iter().map(|name| name.to_string()))?;
    for record in records {
        let entry = &record.entry;
        let recipients = entry
            .recipients
            .iter()
            .map(|r| format!("{} {} ({}): {}", r.address, r.method, r.evidence, r.outcome))
            .collect::<Vec<_>>()
            .join("; ");
        let details = entry
            .details
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        write_row(
            &mut output,
            [
                entry.seq.to_string(),
                entry.time.to_string(),
                utc_timestamp(entry.time),
                entry.account.clone(),
                entry.kind.clone(),
                entry.message_id.clone().unwrap_or_default(),
                recipients,
                entry.decision.clone(),
                entry.override_reason.clone().unwrap_or_default(),
                entry.outcome.clone(),
                details,
                record.prev_hash.clone(),
                record.hash.clone(),
            ]
            .into_iter(),
        )?;
    }
    Ok(())
}

fn write_row(output: &mut impl Write, fields: impl Iterator<Item = String>) -> io::Result<()> {
    let line = fields.map(|f| csv_field(&f)).collect::<Vec<_>>().join(",");
    output.write_all(line.as_bytes())?;
    output.write_all(b"\r\n")
}

fn csv_field(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if defused.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// Formats Unix seconds as an RFC 3339 timestamp in UTC, for example
/// `2026-12-04T21:05:09Z`.
pub fn utc_timestamp(unix: i64) -> String {
    let time = crate::calendar::civil(unix);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        time.year, time.month, time.day, time.hour, time.minute, time.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamp_known_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_796_418_309), "2026-12-04T21:05:09Z");
        assert_eq!(utc_timestamp(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn csv_field_quotes_and_defuses() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("-1,2"), "\"'-1,2\"");
    }
}
