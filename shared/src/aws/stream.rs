//! The table's DynamoDB stream as Lambda delivers it: which records are
//! invoices (their new image) and which are customer records (the
//! customer's id), for [`crate::next_at::stream::apply`].

use aws_lambda_events::event::dynamodb::Event;

use super::store::{into_raw_invoice, Item, PARTITION_KEY, SORT_KEY};
use crate::customer::CUSTOMER_SK;
use crate::ledger::INVOICE_SK;
use crate::next_at::stream::Changes;

/// The invoices and customer records a batch changed, and how many records
/// it held. A removed item is left out (its index entries go with it), and
/// so is every other record (ledger, links, the run state).
pub fn changes(event: &Event) -> (Changes, usize) {
    let mut changes = Changes::default();
    for record in &event.records {
        let keys: Item = record.change.keys.clone().into();
        let text = |name: &str| keys.get(name).and_then(|v| v.as_s().ok()).cloned();
        let (Some(pk), Some(sk)) = (text(PARTITION_KEY), text(SORT_KEY)) else {
            continue;
        };
        if record.event_name == "REMOVE" {
            continue;
        }
        if sk == INVOICE_SK {
            let image: Item = record.change.new_image.clone().into();
            if !image.is_empty() {
                changes.invoices.push(into_raw_invoice(image));
            }
        } else if sk == CUSTOMER_SK {
            if let Some(id) = pk.strip_prefix("customer#") {
                changes.customers.push(id.to_owned());
            }
        }
    }
    (changes, event.records.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_gives_invoice_images_and_changed_customers_and_nothing_else() {
        let event: Event = serde_json::from_value(serde_json::json!({"Records": [
            {"eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1",
             "dynamodb": {"Keys": {"invoice_id": {"S": "INV-1"}, "sk": {"S": "invoice"}},
                          "NewImage": {"invoice_id": {"S": "INV-1"}, "sk": {"S": "invoice"}, "status": {"S": "open"},
                                       "amount": {"N": "120.50"}, "due_date": {"S": "2026-11-23"}},
                          "SequenceNumber": "100", "SizeBytes": 80, "StreamViewType": "NEW_IMAGE"}},
            {"eventID": "2", "eventName": "MODIFY", "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1",
             "dynamodb": {"Keys": {"invoice_id": {"S": "customer#C-1"}, "sk": {"S": CUSTOMER_SK}},
                          "NewImage": {"invoice_id": {"S": "customer#C-1"}, "sk": {"S": CUSTOMER_SK}},
                          "SequenceNumber": "101", "SizeBytes": 40, "StreamViewType": "NEW_IMAGE"}},
            {"eventID": "3", "eventName": "REMOVE", "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1",
             "dynamodb": {"Keys": {"invoice_id": {"S": "INV-2"}, "sk": {"S": "invoice"}},
                          "SequenceNumber": "102", "SizeBytes": 20, "StreamViewType": "NEW_IMAGE"}},
            {"eventID": "4", "eventName": "INSERT", "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1",
             "dynamodb": {"Keys": {"invoice_id": {"S": "INV-1"}, "sk": {"S": "reminder#pre_due#email"}},
                          "NewImage": {"invoice_id": {"S": "INV-1"}, "sk": {"S": "reminder#pre_due#email"}},
                          "SequenceNumber": "103", "SizeBytes": 20, "StreamViewType": "NEW_IMAGE"}}
        ]}))
        .unwrap();
        let (changes, records) = changes(&event);
        assert_eq!(records, 4);
        assert_eq!(changes.invoices.len(), 1);
        assert_eq!(changes.invoices[0].id_hint(), Some("INV-1"));
        assert_eq!(
            changes.invoices[0].0.get("amount"),
            Some(&crate::invoice::RawValue::Number("120.50".into())),
            "a Number stays exact"
        );
        assert_eq!(changes.customers, ["C-1"]);
    }
}
