"""SMS lengths of the demo's invoices (docs/benchmarks.md): the default
due-today SMS of every open invoice of examples/invoices.csv, in en, zh-Hans
and zh-Hant, rendered from the templates of a git revision with the link that
revision made, measured in encoding units and SMS segments.

Usage: python scripts/sms_lengths.py [BEFORE_REV]   (default 944abf7, the last
commit with signed links)

"before": the templates at BEFORE_REV, with its signed link
`PAY_LINK_BASE_URL/<invoice_id>?exp=<10 digits>&sig=<22 characters>` under
that revision's `https://pay.acme.example/i`; "after": the working tree's
templates with a stored link `https://pay.acme.example/<16 characters>`
(infra/local.env). The templates are jinja, rendered here with jinja2
(installed with flask); the Rust renderer's own measure of the "after" case
is the test `every_demo_due_today_sms_is_one_segment_in_every_locale`.
"""

import csv
import json
import subprocess
import sys

import jinja2

GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT = set("^{}\\[~]|€\f")
EXPONENT = {"JPY": 0, "KWD": 3}
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def measure(text):
    if all(c in GSM or c in GSM_EXT for c in text):
        units = sum(2 if c in GSM_EXT else 1 for c in text)
        return "GSM-7", units, 1 if units <= 160 else -(-units // 153)
    units = len(text.encode("utf-16-le")) // 2
    return "UCS-2", units, 1 if units <= 70 else -(-units // 67)


def money(amount, currency):
    exp = EXPONENT.get(currency, 2)
    whole, _, frac = f"{float(amount):.{exp}f}".partition(".")
    whole = f"{int(whole):,}"
    return f"{currency} {whole}" + (f".{frac}" if frac else "")


def template(rev, locale):
    path = f"shared/templates/{locale}/due_today/sms.txt"
    if rev is None:
        return open(path).read()
    return subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True).stdout


def main():
    before_rev = sys.argv[1] if len(sys.argv) > 1 else "944abf7"
    rows = [r for r in csv.DictReader(open("examples/invoices.csv")) if r["status"] == "open"]
    out = {}
    for label, rev in (("before", before_rev), ("after", None)):
        for locale in ("en", "zh-Hans", "zh-Hant"):
            tpl = jinja2.Template(template(rev, locale))
            worst, segments = 0, []
            for r in rows:
                if not (r["email"] or r["phone"]):
                    continue  # the other malformed demo row (no contact)
                try:
                    amount = money(r["amount"], r["currency"])
                except ValueError:
                    continue  # the malformed demo row, refused at import
                y, m, d = r["due_date"].split("-")
                short = f"{int(d)} {MONTHS[int(m) - 1]}" if locale == "en" else f"{int(m)}月{int(d)}日"
                link = (f"https://pay.acme.example/i/{r['invoice_id']}?exp=1798675200&sig=TSVwBnv61xoHq9UR8PUVIQ"
                        if label == "before" else "https://pay.acme.example/Zm9vYmFyZm9vYmFy")
                text = tpl.render(count=1, business_name="Acme Ltd", invoice_id=r["invoice_id"], amount=amount,
                                  due_date_short=short, pay_link=link).strip()
                enc, units, segs = measure(text)
                worst = max(worst, units)
                segments.append(segs)
            out.setdefault(locale, {})[label] = {
                "invoices": len(segments), "longest_units": worst, "encoding": enc,
                "segments_max": max(segments), "one_segment": sum(1 for s in segments if s == 1),
            }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
