use super::*;

fn raw(extra: &[(&str, RawValue)]) -> RawInvoice {
    let mut raw = RawInvoice::default();
    for (k, v) in [
        ("invoice_id", "INV-1"),
        ("customer_id", "C-1"),
        ("customer_name", "Ana Lima"),
        ("email", "ana@example.com"),
        ("amount", "1200.00"),
        ("currency", "USD"),
        ("due_date", "2026-12-01"),
        ("status", "open"),
    ] {
        raw.insert(k, RawValue::Text(v.into()));
    }
    for (k, v) in extra {
        raw.insert(*k, v.clone());
    }
    raw
}

fn request(edit: Edit) -> Request {
    Request {
        edit,
        by: "cli:ana".into(),
        reason: Some("called the customer".into()),
        command: None,
    }
}

fn at() -> DateTime<Utc> {
    "2026-12-02T10:00:00Z".parse().unwrap()
}

/// The invoice after the plan, as the store writes it.
fn applied(raw: &RawInvoice, plan: &EditPlan) -> RawInvoice {
    let mut out = raw.clone();
    for (k, v) in &plan.set {
        out.insert(k.clone(), v.clone());
    }
    for k in &plan.remove {
        out.0.remove(k);
    }
    out
}

#[test]
fn every_command_changes_once_then_nothing_and_says_who_and_why() {
    let until = "2026-12-20".to_owned();
    let due: NaiveDate = "2026-12-31".parse().unwrap();
    let commands = [
        Edit::Pause { until },
        Edit::Resume,
        Edit::Dispute,
        Edit::Resolve,
        Edit::Extend { due },
        Edit::Set(vec![("amount".into(), Some("1000.00".into()))]),
        Edit::Void,
    ];
    let mut inv = raw(&[]);
    for edit in commands {
        let name = edit.command();
        let plan = plan(&inv, &request(edit.clone()), at())
            .unwrap()
            .unwrap_or_else(|| panic!("{name} changes the invoice"));
        assert!(plan
            .record_sk
            .starts_with("change#2026-12-02T10:00:00.000Z#"));
        assert!(plan
            .record
            .contains(&("by", RawValue::Text("cli:ana".into()))));
        assert!(plan
            .record
            .contains(&("reason", RawValue::Text("called the customer".into()))));
        inv = applied(&inv, &plan);
        Invoice::parse(&inv).expect("still valid");
        assert!(
            super::plan(&inv, &request(edit), at()).unwrap().is_none(),
            "{name} again changes nothing"
        );
    }
    let inv = Invoice::parse(&inv).unwrap();
    assert_eq!(inv.status, InvoiceStatus::Void);
    assert_eq!(inv.amount.amount.to_string(), "1000.00");
    assert_eq!(inv.due_date, due);
    assert!(!inv.disputed && inv.paused_until.is_none());
    let bad = super::plan(
        &raw(&[]),
        &request(Edit::Pause {
            until: "soon".into(),
        }),
        at(),
    );
    assert!(matches!(
        bad,
        Err(EditError::Invalid(InvalidReason::BadPausedUntil))
    ));
}

#[test]
fn a_new_due_date_starts_a_cycle_and_forgets_the_old_steps() {
    let inv = raw(&[
        ("reminder_offset", RawValue::Number("3".into())),
        ("reminded", RawValue::List(vec!["overdue_3#email".into()])),
    ]);
    let due: NaiveDate = "2026-12-31".parse().unwrap();
    let plan = plan(&inv, &request(Edit::Extend { due }), at())
        .unwrap()
        .unwrap();
    let after = applied(&inv, &plan);
    assert_eq!(after.0[CYCLE], RawValue::Text("2026-12-31".into()));
    assert!(!after.0.contains_key("reminder_offset") && !after.0.contains_key("reminded"));
    assert_eq!(
        plan.changes,
        [Change {
            attribute: "due_date".into(),
            before: Some("2026-12-01".into()),
            after: Some("2026-12-31".into())
        }]
    );
    assert_eq!(
        plan.changes[0].to_string(),
        "due_date: 2026-12-01 -> 2026-12-31"
    );
    // Only later: an earlier date is refused with the reason.
    let earlier = super::plan(
        &inv,
        &request(Edit::Extend {
            due: "2026-11-01".parse().unwrap(),
        }),
        at(),
    );
    assert!(matches!(earlier, Err(EditError::NotAllowed(m)) if m.contains("not after")));
}

#[test]
fn what_would_be_invalid_or_is_not_editable_or_not_open_is_refused() {
    let inv = raw(&[]);
    let set = |k: &str, v: Option<&str>| {
        plan(
            &inv,
            &request(Edit::Set(vec![(k.into(), v.map(str::to_owned))])),
            at(),
        )
    };
    assert!(matches!(
        set("amount", Some("12.345")),
        Err(EditError::Invalid(InvalidReason::BadAmount(
            crate::invoice::AmountProblem::TooPrecise
        )))
    ));
    assert!(matches!(
        set("email", None),
        Err(EditError::Invalid(InvalidReason::NoContact))
    ));
    assert!(matches!(
        set("amount_paid", Some("5")),
        Err(EditError::NotEditable(_))
    ));
    // 1200.00 stored as the Number 1200 (as DynamoDB keeps it): the same amount.
    let number = raw(&[("amount", RawValue::Number("1200".into()))]);
    let same = plan(
        &number,
        &request(Edit::Set(vec![("amount".into(), Some("1200.00".into()))])),
        at(),
    );
    assert!(matches!(same, Ok(None)));
    // A paid invoice is not voided by a file either.
    let paid = raw(&[("status", RawValue::Text("paid".into()))]);
    let void = plan(
        &paid,
        &request(Edit::Set(vec![("status".into(), Some("void".into()))])),
        at(),
    );
    assert!(matches!(void, Err(EditError::NotAllowed(_))));
    let paid = raw(&[("status", RawValue::Text("paid".into()))]);
    for edit in [
        Edit::Void,
        Edit::Dispute,
        Edit::Extend {
            due: "2027-01-01".parse().unwrap(),
        },
    ] {
        assert!(matches!(
            plan(&paid, &request(edit), at()),
            Err(EditError::NotAllowed(_))
        ));
    }
}

#[test]
fn a_reimport_compares_only_the_columns_it_has_and_an_empty_cell_removes() {
    let stored = raw(&[
        ("locale", RawValue::Text("en".into())),
        ("status", RawValue::Text("paid".into())),
    ]);
    // The file: a new amount, no locale, and `open` (its billing system has
    // not seen the payment); it has no column for the timezone.
    let mut row = raw(&[
        ("amount", RawValue::Text("900.00".into())),
        ("locale", RawValue::Text(String::new())),
    ]);
    row.0.remove("locale");
    let mut columns: std::collections::BTreeSet<String> = row.0.keys().cloned().collect();
    columns.insert("locale".into());
    let fields = import_fields(&Invoice::parse(&row).unwrap(), &columns);
    assert!(fields.contains(&("amount".to_owned(), Some("900.00".to_owned()))));
    assert!(fields.contains(&("locale".to_owned(), None)));
    assert!(!fields.iter().any(|(k, _)| k == "timezone"));
    let import = Request {
        command: Some(IMPORT),
        ..request(Edit::Set(fields.clone()))
    };
    let plan = plan(&stored, &import, at()).unwrap().unwrap();
    assert_eq!(plan.remove, ["locale"]);
    let changed: Vec<&str> = plan.changes.iter().map(|c| c.attribute.as_str()).collect();
    assert_eq!(
        changed,
        ["amount", "locale"],
        "a file never reopens a paid invoice"
    );
    assert!(plan.record_sk.ends_with("#import"));
    // Re-importing the same file changes nothing.
    assert!(super::plan(&applied(&stored, &plan), &import, at())
        .unwrap()
        .is_none());
    // `edit --status open` by a person does reopen it.
    let by_hand = super::plan(&stored, &request(Edit::Set(fields)), at())
        .unwrap()
        .unwrap();
    assert!(by_hand.changes.iter().any(|c| c.attribute == "status"));
}

#[test]
fn an_earlier_due_date_corrects_the_cycle_and_a_later_one_starts_another() {
    let inv = raw(&[
        ("reminder_offset", RawValue::Number("7".into())),
        (
            "reminded",
            RawValue::List(vec![
                "overdue_7#email".into(),
                "promise_broken@2026-11-20#email".into(),
            ]),
        ),
    ]);
    let to = |due: &str| {
        plan(
            &inv,
            &request(Edit::Set(vec![("due_date".into(), Some(due.into()))])),
            at(),
        )
        .unwrap()
        .unwrap()
    };
    // A day earlier: same cycle, what was reached stays reached.
    let earlier = applied(&inv, &to("2026-11-30"));
    assert!(!earlier.0.contains_key(CYCLE));
    assert_eq!(earlier.0["reminder_offset"], RawValue::Number("7".into()));
    // Later: a new cycle; a broken promise's message stays settled.
    let later = applied(&inv, &to("2026-12-20"));
    assert_eq!(later.0[CYCLE], RawValue::Text("2026-12-20".into()));
    assert!(!later.0.contains_key("reminder_offset"));
    assert_eq!(
        later.0["reminded"],
        RawValue::List(vec!["promise_broken@2026-11-20#email".into()])
    );
}

#[test]
fn an_invalid_item_is_repaired_by_setting_fields_but_not_paused() {
    let mut broken = raw(&[]);
    broken.0.remove("email");
    let fix = plan(
        &broken,
        &request(Edit::Set(vec![(
            "email".into(),
            Some("ana@example.com".into()),
        )])),
        at(),
    )
    .unwrap()
    .unwrap();
    Invoice::parse(&applied(&broken, &fix)).expect("repaired");
    let pause = plan(
        &broken,
        &request(Edit::Pause {
            until: "2026-12-20".into(),
        }),
        at(),
    );
    assert!(matches!(
        pause,
        Err(EditError::Invalid(InvalidReason::NoContact))
    ));
}

#[test]
fn a_plan_sums_to_what_is_owed_and_writes_a_wake_record_per_date_and_not_for_stripe_s() {
    let inv = raw(&[("amount_paid", RawValue::Text("200.00".into()))]);
    let plan_of = |raw: &RawInvoice, parts: &[&str]| {
        plan(
            raw,
            &request(Edit::Plan {
                instalments: parts.iter().map(|s| s.to_string()).collect(),
            }),
            at(),
        )
    };
    let ok = plan_of(&inv, &["2026-12-15:500.00", "2027-01-15:500.00"])
        .unwrap()
        .unwrap();
    assert_eq!(ok.wake.len(), 2);
    let after = applied(&inv, &ok);
    assert_eq!(
        after.0[crate::invoice::instalments::PLAN_PAID_BEFORE],
        RawValue::Text("200.00".into())
    );
    assert!(matches!(
        plan_of(&inv, &["2026-12-15:600.00"]),
        Err(EditError::Plan(
            crate::invoice::instalments::PlanError::Sum { .. }
        ))
    ));
    let synced = raw(&[(STRIPE_LINK, RawValue::Text("in_1".into()))]);
    assert!(matches!(
        plan_of(&synced, &["2026-12-15:1200.00"]),
        Err(EditError::NotAllowed(m)) if m.contains("Stripe")
    ));
    // A promise on a plan's date: one wake record for the date.
    let both = plan(
        &inv,
        &request(Edit::Set(vec![
            ("instalments".into(), Some("2026-12-15:1000.00".into())),
            ("promised_by".into(), Some("2026-12-15".into())),
        ])),
        at(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(both.wake, ["2026-12-15".parse::<NaiveDate>().unwrap()]);
}

#[test]
fn marking_an_invoice_paid_says_when_and_counts_in_the_report_s_rollup() {
    let set_status = |s: &str| Edit::Set(vec![("status".into(), Some(s.into()))]);
    let open = raw(&[("amount_paid", RawValue::Text("200.00".into()))]);
    let plan = plan(&open, &request(set_status("paid")), at())
        .unwrap()
        .unwrap();
    let paid = applied(&open, &plan);
    assert_eq!(
        paid.text("paid_at").unwrap(),
        Some("2026-12-02T10:00:00.000Z")
    );
    assert_eq!(
        plan.rollup["money#2026-12-02"]["received#USD"],
        "1000.00".parse::<rust_decimal::Decimal>().unwrap(),
        "what it still owed came in"
    );
    // Open again: the counts come back out; a void is not a payment.
    let back = plan_of(&paid, set_status("open"));
    assert_eq!(
        back.rollup["money#2026-12-02"]["received#USD"],
        "-1000.00".parse::<rust_decimal::Decimal>().unwrap()
    );
    assert!(plan_of(&open, Edit::Void).rollup.is_empty());
    assert!(plan_of(&open, Edit::Dispute).rollup.is_empty());
    // A provider's copy: paid at its event's instant, not at the sync's.
    let synced = plan_of(
        &open,
        Edit::Sync {
            fields: vec![("status".into(), Some("paid".into()))],
            created: 1_764_500_000,
        },
    );
    let when = DateTime::from_timestamp(1_764_500_000, 0).unwrap();
    assert_eq!(
        applied(&open, &synced).text("paid_at").unwrap(),
        Some(when.to_rfc3339_opts(SecondsFormat::Millis, true).as_str())
    );
    assert!(synced
        .rollup
        .contains_key(&format!("money#{}", when.date_naive())));
}

fn plan_of(raw: &RawInvoice, edit: Edit) -> EditPlan {
    plan(raw, &request(edit), at()).unwrap().unwrap()
}
