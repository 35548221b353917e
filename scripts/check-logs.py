"""No personal data in any log line: searches the log lines the test suite
captured (DUNNING_LOG_CAPTURE, shared/src/telemetry.rs: every function run
in-process by the tests, the CLI and the functions under `cargo lambda
watch`) for the e-mail addresses, phone numbers and customer names of the
fixtures (tests/, shared/tests/, examples/), and for any unmasked e-mail
address or phone number at all. A masked address must not keep its domain.

Usage: python scripts/check-logs.py <capture dir> [--self-test]
Exit 1 with the offending lines (their personal data masked) when any is found.
Standard library only.
"""

import csv
import json
import pathlib
import re
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = ["tests", "shared/tests", "examples", "shared/src"]
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PHONE = re.compile(r"\+[1-9]\d{7,14}")
NAME_IN_CODE = re.compile(r'"customer_name"\s*[,:]\s*"([^"]{3,})"')


def fixtures():
    """(emails, phones, names) written anywhere in the tests' sources and data."""
    emails, phones, names = set(), set(), set()
    for base in SOURCES:
        for path in (ROOT / base).rglob("*"):
            if not path.is_file() or path.suffix not in {".rs", ".json", ".jsonl", ".csv", ".toml", ".txt"}:
                continue
            text = path.read_text(errors="ignore")
            emails.update(e.lower() for e in EMAIL.findall(text))
            phones.update(PHONE.findall(text))
            names.update(NAME_IN_CODE.findall(text))
            if path.suffix == ".csv":
                rows = list(csv.DictReader(text.splitlines()))
                names.update(r["customer_name"] for r in rows if r.get("customer_name"))
    # A name, not a column list's next column (`"customer_name", "email"`).
    real = {n for n in names if len(n) >= 4 and not re.fullmatch(r"[a-z_]+", n)}
    return emails, phones, real


def mask(text):
    return PHONE.sub("+***", EMAIL.sub("<email>", text))


def find(lines, emails, phones, names):
    """The lines carrying personal data, with what each carries."""
    domains = {e.split("@", 1)[1] for e in emails}
    bad = []
    for where, line in lines:
        lower = line.lower()
        found = [e for e in EMAIL.findall(line)]  # any address at all, fixture or not
        found += [p for p in PHONE.findall(line) if len(p) >= 9]
        found += [n for n in names if n.lower() in lower]
        # A masked address keeps neither its local part nor its domain.
        found += [d for d in domains if f"***@{d}" in lower or f"*@{d}" in lower]
        found += [e for e in emails if e in lower]
        found += [p for p in phones if p in line]
        if found:
            bad.append((where, sorted(set(found))))
    return bad


def read(capture):
    lines = []
    for path in sorted(pathlib.Path(capture).glob("*.log")):
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            lines.append((f"{path.name}:{n}", line))
    return lines


def self_test():
    """The check finds what it must: a planted address, number, name, domain."""
    emails, phones, names = {"ana.lima@example.com"}, {"+15555550101"}, {"Ana Lima"}
    planted = [
        ("a", '{"fields":{"message":"sent to ana.lima@example.com"}}'),
        ("b", '{"fields":{"to":"+15555550101"}}'),
        ("c", '{"fields":{"customer":"Ana Lima"}}'),
        ("d", '{"fields":{"recipient":"a***@example.com"}}'),
        ("e", '{"fields":{"message":"x@other.org rejected"}}'),
        ("ok", '{"fields":{"recipient":"a***@e***.com","phone":"+1*******0101"}}'),
    ]
    bad = {where for where, _ in find(planted, emails, phones, names)}
    assert bad == {"a", "b", "c", "d", "e"}, bad
    with tempfile.TemporaryDirectory() as d:
        (pathlib.Path(d) / "x-1.log").write_text(planted[0][1] + "\n")
        assert len(read(d)) == 1
    print("check-logs self-test: planted personal data found, masked forms pass")


def main():
    if "--self-test" in sys.argv:
        return self_test()
    capture = sys.argv[1]
    lines = read(capture)
    files = {where.split(":")[0] for where, _ in lines}
    emails, phones, names = fixtures()
    # The capture is real: logs of runs, the webhook and the CLI are in it.
    # (the functions under `cargo lambda watch` by their programs' names).
    programs = ("dunning-admin", "dunning-run", "payment-webhook", "pay-page")
    must = {"run finished": 0, "webhook": 0, **{p: 0 for p in programs}}
    for where, line in lines:
        if '"run finished"' in line:
            must["run finished"] += 1
        if '"payment applied"' in line:
            must["webhook"] += 1
        for program in programs:
            if re.match(rf"{program}-\d+\.log:", where):
                must[program] += 1
    missing = [k for k, v in must.items() if v == 0]
    if missing or len(emails) < 10 or len(phones) < 5 or len(names) < 2:
        sys.exit(f"check-logs: the capture in {capture} misses {missing} ({len(lines)} lines in "
                 f"{len(files)} files; fixtures: {len(emails)} emails, {len(phones)} phones, {len(names)} names)")
    bad = find(lines, emails, phones, names)
    for where, what in bad[:50]:
        print(f"{where}: personal data in a log line: {[mask(w) for w in what]}")
    if bad:
        sys.exit(f"check-logs: {len(bad)} of {len(lines)} log lines carry personal data")
    print(f"check-logs: {len(lines)} log lines from {len(files)} processes ({must['run finished']} runs), "
          f"none with any of {len(emails)} fixture addresses, {len(phones)} numbers, {len(names)} names")


if __name__ == "__main__":
    main()
