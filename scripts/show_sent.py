"""Prints what the local emulator "sent": every email (SES) and SMS (SNS).

Usage: python scripts/show_sent.py http://127.0.0.1:PORT
The last line is a machine-checkable total: `sent: N emails, M SMS`.
"""

import html
import json
import re
import sys
import urllib.request


def main():
    endpoint = sys.argv[1].rstrip("/")
    data = json.load(urllib.request.urlopen(f"{endpoint}/moto-api/data.json"))
    emails = data.get("ses", {}).get("Message", [])
    sms = data.get("sns", {}).get("SMS", [])
    for m in sorted(emails, key=lambda m: m["destinations"]["ToAddresses"]):
        to = ", ".join(m["destinations"]["ToAddresses"])
        link = re.search(r'href="([^"]+)"', m.get("body") or "")
        print(f"EMAIL {to:<26} {m['subject']}")
        if link:
            print(f"      {'':<26} link: {html.unescape(link.group(1))}")
    for m in sorted(sms, key=lambda m: m["phone_number"]):
        print(f"SMS   {m['phone_number']:<26} {m['message']}")
    print(f"sent: {len(emails)} emails, {len(sms)} SMS")


if __name__ == "__main__":
    main()
