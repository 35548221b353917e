//! What the pay page says, in each language we write.

use crate::render::Locale;

/// Fixed phrases; sentences with values are the functions below.
#[derive(Debug, serde::Serialize)]
pub struct Strings {
    pub lang: &'static str,
    pub invoice: &'static str,
    pub invoice_amount: &'static str,
    pub paid_so_far: &'static str,
    pub late_fee: &'static str,
    pub outstanding: &'static str,
    pub due_date: &'static str,
    pub due_today: &'static str,
    pub pay: &'static str,
    pub card: &'static str,
    pub confirm: &'static str,
    pub working: &'static str,
    pub confirming: &'static str,
    pub paid_now: &'static str,
    pub failed: &'static str,
    pub busy: &'static str,
    pub unavailable: &'static str,
    pub amount_changed: &'static str,
    pub nothing_to_pay: &'static str,
    pub void: &'static str,
    pub gone_title: &'static str,
    pub gone_text: &'static str,
    pub pay_elsewhere: &'static str,
    pub no_js: &'static str,
    pub your_invoices: &'static str,
    pub secure: &'static str,
    pub unsubscribe_title: &'static str,
    pub unsubscribe_text: &'static str,
    pub unsubscribe_button: &'static str,
    pub unsubscribed_title: &'static str,
    pub unsubscribed_text: &'static str,
    pub statement: &'static str,
    pub all_invoices: &'static str,
    pub open_invoices: &'static str,
    pub total_due: &'static str,
    pub by_age: &'static str,
    /// The aging buckets' names, in [`crate::report::BUCKETS`] order.
    pub buckets: [&'static str; 6],
    pub date: &'static str,
    pub amount: &'static str,
    pub nothing_owed: &'static str,
    pub no_payments: &'static str,
}

const EN: Strings = Strings {
    lang: "en",
    invoice: "Invoice",
    invoice_amount: "Invoice amount",
    paid_so_far: "Paid so far",
    late_fee: "Late fee",
    outstanding: "To pay",
    due_date: "Due date",
    due_today: "Due today",
    pay: "Pay",
    card: "Card details",
    confirm: "Pay now",
    working: "Processing…",
    confirming: "Thank you. We are confirming your payment; this page updates by itself.",
    paid_now: "Paid. Thank you!",
    failed: "The payment did not go through. Please check your card details and try again.",
    busy: "We could not start the payment just now. Please try again in a minute.",
    unavailable: "Online payment is not available for this invoice just now. Please contact us.",
    amount_changed: "The amount to pay has changed. Please check it and pay again.",
    nothing_to_pay: "Nothing to pay",
    void: "This invoice was cancelled. There is nothing to pay.",
    gone_title: "This link is not valid",
    gone_text: "The link may have expired or been replaced by a newer one. Please use the link in the most recent message you received, or contact us.",
    pay_elsewhere: "Pay the invoice",
    no_js: "Paying by card needs JavaScript. You can still read everything on this page.",
    your_invoices: "Your invoices",
    secure: "Card payments are processed securely by Stripe.",
    unsubscribe_title: "Stop e-mail reminders?",
    unsubscribe_text: "You will no longer get payment reminders by e-mail. Receipts for payments you make still come.",
    unsubscribe_button: "Stop e-mail reminders",
    unsubscribed_title: "E-mail reminders stopped",
    unsubscribed_text: "You will get no more payment reminders by e-mail. Contact us if this was a mistake.",
    statement: "Statement",
    all_invoices: "All your invoices (statement)",
    open_invoices: "Open invoices",
    total_due: "Total due",
    by_age: "By age",
    buckets: ["Not yet due", "1–30 days overdue", "31–60 days overdue", "61–90 days overdue", "91–120 days overdue", "Over 120 days overdue"],
    date: "Date",
    amount: "Amount",
    nothing_owed: "Nothing is owed. Thank you!",
    no_payments: "No payments in this period.",
};

const ZH_HANS: Strings = Strings {
    lang: "zh-Hans",
    invoice: "发票",
    invoice_amount: "发票金额",
    paid_so_far: "已付金额",
    late_fee: "滞纳金",
    outstanding: "应付金额",
    due_date: "到期日",
    due_today: "今天到期",
    pay: "支付",
    card: "银行卡信息",
    confirm: "立即支付",
    working: "处理中…",
    confirming: "谢谢。我们正在确认您的付款，本页面会自动更新。",
    paid_now: "已付款，谢谢！",
    failed: "付款未成功，请检查银行卡信息后重试。",
    busy: "暂时无法发起付款，请稍后重试。",
    unavailable: "此发票暂时无法在线付款，请与我们联系。",
    amount_changed: "应付金额已变更，请核对后再次付款。",
    nothing_to_pay: "无需付款",
    void: "此发票已取消，无需付款。",
    gone_title: "此链接无效",
    gone_text: "链接可能已过期或已被新链接取代。请使用您最近收到的消息中的链接，或与我们联系。",
    pay_elsewhere: "支付发票",
    no_js: "银行卡付款需要启用 JavaScript。您仍可阅读本页的全部内容。",
    your_invoices: "您的发票",
    secure: "银行卡付款由 Stripe 安全处理。",
    unsubscribe_title: "停止接收电子邮件提醒？",
    unsubscribe_text: "您将不再通过电子邮件收到付款提醒。付款收据仍会发送给您。",
    unsubscribe_button: "停止电子邮件提醒",
    unsubscribed_title: "已停止电子邮件提醒",
    unsubscribed_text: "您将不再通过电子邮件收到付款提醒。如有误，请联系我们。",
    statement: "对账单",
    all_invoices: "您的全部发票（对账单）",
    open_invoices: "未付发票",
    total_due: "应付总额",
    by_age: "按账龄",
    buckets: [
        "未到期",
        "逾期 1–30 天",
        "逾期 31–60 天",
        "逾期 61–90 天",
        "逾期 91–120 天",
        "逾期超过 120 天",
    ],
    date: "日期",
    amount: "金额",
    nothing_owed: "目前没有应付款项。谢谢！",
    no_payments: "此期间没有付款。",
};

const ZH_HANT: Strings = Strings {
    lang: "zh-Hant",
    invoice: "發票",
    invoice_amount: "發票金額",
    paid_so_far: "已付金額",
    late_fee: "滯納金",
    outstanding: "應付金額",
    due_date: "到期日",
    due_today: "今天到期",
    pay: "支付",
    card: "信用卡資料",
    confirm: "立即支付",
    working: "處理中…",
    confirming: "謝謝。我們正在確認您的付款，本頁面會自動更新。",
    paid_now: "已付款，謝謝！",
    failed: "付款未成功，請檢查信用卡資料後重試。",
    busy: "暫時無法發起付款，請稍後重試。",
    unavailable: "此發票暫時無法線上付款，請與我們聯絡。",
    amount_changed: "應付金額已變更，請核對後再次付款。",
    nothing_to_pay: "無需付款",
    void: "此發票已取消，無需付款。",
    gone_title: "此連結無效",
    gone_text: "連結可能已過期或已被新連結取代。請使用您最近收到的訊息中的連結，或與我們聯絡。",
    pay_elsewhere: "支付發票",
    no_js: "信用卡付款需要啟用 JavaScript。您仍可閱讀本頁的全部內容。",
    your_invoices: "您的發票",
    secure: "信用卡付款由 Stripe 安全處理。",
    unsubscribe_title: "停止接收電子郵件提醒？",
    unsubscribe_text: "您將不再透過電子郵件收到付款提醒。付款收據仍會寄給您。",
    unsubscribe_button: "停止電子郵件提醒",
    unsubscribed_title: "已停止電子郵件提醒",
    unsubscribed_text: "您將不再透過電子郵件收到付款提醒。如有誤，請聯絡我們。",
    statement: "對帳單",
    all_invoices: "您的全部發票（對帳單）",
    open_invoices: "未付發票",
    total_due: "應付總額",
    by_age: "按帳齡",
    buckets: [
        "未到期",
        "逾期 1–30 天",
        "逾期 31–60 天",
        "逾期 61–90 天",
        "逾期 91–120 天",
        "逾期超過 120 天",
    ],
    date: "日期",
    amount: "金額",
    nothing_owed: "目前沒有應付款項。謝謝！",
    no_payments: "此期間沒有付款。",
};

impl Strings {
    pub fn of(locale: Locale) -> &'static Strings {
        match locale {
            Locale::En => &EN,
            Locale::ZhHans => &ZH_HANS,
            Locale::ZhHant => &ZH_HANT,
        }
    }
}

/// `Overdue by 3 days` / `due in 3 days`.
pub fn overdue_by(locale: Locale, days: i64) -> String {
    match (locale, days) {
        (Locale::En, 1) => "1 day overdue".into(),
        (Locale::En, d) => format!("{d} days overdue"),
        (Locale::ZhHans, d) => format!("已逾期 {d} 天"),
        (Locale::ZhHant, d) => format!("已逾期 {d} 天"),
    }
}

pub fn due_in(locale: Locale, days: i64) -> String {
    match (locale, days) {
        (Locale::En, 1) => "Due tomorrow".into(),
        (Locale::En, d) => format!("Due in {d} days"),
        (Locale::ZhHans, d) => format!("{d} 天后到期"),
        (Locale::ZhHant, d) => format!("{d} 天後到期"),
    }
}

pub fn paid_on(locale: Locale, date: &str) -> String {
    match locale {
        Locale::En => format!("Paid in full. Last payment received on {date}. Thank you!"),
        Locale::ZhHans => format!("已全额付款。最后一笔付款于{date}收到。谢谢！"),
        Locale::ZhHant => format!("已全額付款。最後一筆付款於{date}收到。謝謝！"),
    }
}

pub fn pay_amount(locale: Locale, amount: &str) -> String {
    match locale {
        Locale::En => format!("Pay {amount}"),
        Locale::ZhHans | Locale::ZhHant => format!("支付 {amount}"),
    }
}

/// For an invoice paid on its own hosted page, while a late fee is owed here.
pub fn fee_after_hosted(locale: Locale, fee: &str) -> String {
    match locale {
        Locale::En => format!("The invoice is paid on its own page. The late fee of {fee} can be paid here once the invoice is paid."),
        Locale::ZhHans => format!("发票请在其自身页面支付。发票付清后，可在此支付滞纳金 {fee}。"),
        Locale::ZhHant => format!("發票請在其自身頁面支付。發票付清後，可在此支付滯納金 {fee}。"),
    }
}

pub fn title(locale: Locale, business: &str) -> String {
    match locale {
        Locale::En => format!("Pay {business}"),
        Locale::ZhHans | Locale::ZhHant => format!("向 {business} 付款"),
    }
}

/// The statement's heading: whose, and on which day.
pub fn statement_of(locale: Locale, customer: &str, date: &str) -> String {
    match (locale, customer.is_empty()) {
        (Locale::En, false) => format!("Statement for {customer}, {date}"),
        (Locale::En, true) => format!("Statement, {date}"),
        (Locale::ZhHans, false) => format!("{customer}的对账单（{date}）"),
        (Locale::ZhHant, false) => format!("{customer}的對帳單（{date}）"),
        (Locale::ZhHans, true) => format!("对账单（{date}）"),
        (Locale::ZhHant, true) => format!("對帳單（{date}）"),
    }
}

pub fn payments_in_last(locale: Locale, days: i64) -> String {
    match locale {
        Locale::En => format!("Payments received in the last {days} days"),
        Locale::ZhHans | Locale::ZhHant => format!("最近 {days} 天收到的付款"),
    }
}

/// When a statement shows only its first invoices.
pub fn only_first(locale: Locale, shown: usize) -> String {
    match locale {
        Locale::En => format!("Only the first {shown} invoices are shown here. Please contact us for the full statement."),
        Locale::ZhHans => format!("此处仅显示前 {shown} 张发票。如需完整对账单，请与我们联系。"),
        Locale::ZhHant => format!("此處僅顯示前 {shown} 張發票。如需完整對帳單，請與我們聯絡。"),
    }
}
