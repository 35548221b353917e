//! Reading invoices from CSV (a header row of attribute names) or JSON lines
//! (one object per line). Every row is validated like a table item; a bad row
//! is reported with its line number and reason and the rest are imported.

use std::io::{BufRead, Read};

use crate::invoice::{Invoice, RawInvoice, RawValue};

/// A row that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line in the file.
    pub line: u64,
    pub invoice_id: Option<String>,
    /// Stable reason code (as in run summaries) or `unreadable_row`.
    pub reason: String,
    pub detail: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(id) = &self.invoice_id {
            write!(f, " ({id})")?;
        }
        write!(f, ": {} [{}]", self.detail, self.reason)
    }
}

/// A valid row: the invoice, and the columns (attributes) the row had, so
/// that a re-import changes only what the file says.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    /// 1-based line in the file.
    pub line: u64,
    pub invoice: Invoice,
    pub columns: std::collections::BTreeSet<String>,
}

pub type Row = Result<ImportRow, RowError>;

fn validate(line: u64, raw: &RawInvoice) -> Row {
    Invoice::parse(raw)
        .map(|invoice| ImportRow {
            line,
            invoice,
            columns: raw.0.keys().cloned().collect(),
        })
        .map_err(|rejected| RowError {
            line,
            invoice_id: rejected.invoice_id,
            reason: rejected.reason.code(),
            detail: rejected.reason.to_string(),
        })
}

fn unreadable(line: u64, detail: String) -> RowError {
    RowError {
        line,
        invoice_id: None,
        reason: "unreadable_row".into(),
        detail,
    }
}

/// Parses CSV with a header row. Empty cells are absent attributes.
pub fn parse_csv(input: impl Read) -> Vec<Row> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return vec![Err(unreadable(1, format!("header row: {e}")))],
    };
    reader
        .records()
        .map(|record| {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                unreadable(line, e.to_string())
            })?;
            let line = record.position().map_or(0, |p| p.line());
            let mut raw = RawInvoice::default();
            for (name, value) in headers.iter().zip(record.iter()) {
                raw.insert(name, RawValue::Text(value.to_owned()));
            }
            validate(line, &raw)
        })
        .collect()
}

/// A JSON object as a raw invoice: strings are text, nulls are absent, and
/// numbers are refused where the contract wants text (a JSON parser may
/// have read `120.10` as a float: amounts are strings).
pub fn raw_from_json(object: serde_json::Map<String, serde_json::Value>) -> RawInvoice {
    let mut raw = RawInvoice::default();
    for (name, value) in object {
        let v = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => RawValue::Text(s),
            serde_json::Value::Number(_) => RawValue::Other("JSON number"),
            serde_json::Value::Bool(b) => RawValue::Bool(b),
            serde_json::Value::Array(_) => RawValue::Other("list"),
            serde_json::Value::Object(_) => RawValue::Other("map"),
        };
        raw.insert(name, v);
    }
    raw
}

/// Parses JSON lines; blank lines are skipped.
pub fn parse_json_lines(input: impl BufRead) -> Vec<Row> {
    let mut rows = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let number = index as u64 + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                rows.push(Err(unreadable(number, e.to_string())));
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let object = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => {
                rows.push(Err(unreadable(number, "not a JSON object".into())));
                continue;
            }
            Err(e) => {
                rows.push(Err(unreadable(number, format!("not JSON: {e}"))));
                continue;
            }
        };
        let raw = raw_from_json(object);
        rows.push(validate(number, &raw));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "invoice_id,customer_id,customer_name,email,phone,amount,currency,due_date,status\n";

    #[test]
    fn csv_rows_are_validated_with_line_numbers() {
        let csv = format!(
            "{HEADER}INV-1,C1,Ana,ana@example.com,,100.00,USD,2026-11-26,open\n\
             INV-2,C2,Bo,,,50,USD,2026-11-26,open\n\
             INV-3,C3,\"Chen, Wei\",wei@example.com,+15555550111,12.345,USD,2026-11-26,open\n\
             INV-4,C4,Dee,dee@example.com,,10,USD,2026-02-30,open\n"
        );
        let rows = parse_csv(csv.as_bytes());
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].as_ref().unwrap().invoice.id, "INV-1");
        let errs: Vec<(u64, &str)> = rows
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| (e.line, e.reason.as_str()))
            .collect();
        assert_eq!(
            errs,
            [
                (3, "no_contact"),
                (4, "bad_amount_too_precise"),
                (5, "bad_due_date")
            ]
        );
        let shown = rows[1].as_ref().unwrap_err().to_string();
        assert!(shown.starts_with("line 3 (INV-2): neither"), "{shown}");
    }

    #[test]
    fn a_csv_row_with_the_wrong_number_of_cells_is_reported_not_fatal() {
        let csv = format!("{HEADER}INV-1,C1\nINV-2,C2,Bo,bo@example.com,,5,USD,2026-11-26,open\n");
        let rows = parse_csv(csv.as_bytes());
        assert_eq!(rows[0].as_ref().unwrap_err().reason, "unreadable_row");
        assert_eq!(rows[0].as_ref().unwrap_err().line, 2);
        assert!(rows[1].is_ok());
    }

    #[test]
    fn json_lines_accept_text_and_refuse_float_amounts() {
        let input = concat!(
            r#"{"invoice_id":"J1","customer_id":"C","customer_name":"Ann","email":"ann@example.com","amount":"10.00","currency":"EUR","due_date":"2026-11-26","status":"open","metadata":{"po":"7"}}"#,
            "\n\n",
            r#"{"invoice_id":"J2","customer_id":"C","customer_name":"Ann","email":"ann@example.com","amount":10.5,"currency":"EUR","due_date":"2026-11-26","status":"open"}"#,
            "\nnot json\n[1]\n"
        );
        let rows = parse_json_lines(input.as_bytes());
        assert_eq!(rows.len(), 4);
        assert!(rows[0].is_ok());
        let reasons: Vec<(u64, String)> = rows
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| (e.line, e.reason.clone()))
            .collect();
        assert_eq!(
            reasons,
            [
                (3, "wrong_type_amount".into()),
                (4, "unreadable_row".into()),
                (5, "unreadable_row".into())
            ]
        );
    }
}
