"""The demo's customer: opens the pay link a reminder carried and pays it,
doing over HTTP what the page's script does in a browser (the browser itself
is tested by scripts/pay-page-e2e.sh).

Usage: python scripts/demo_pay.py MOTO_URL PAY_PAGE_URL STRIPE_URL RECIPIENT

1. Finds the last message moto recorded for RECIPIENT and its link; the
   token is the same whatever domain the link names.
2. GET the page: prints what it shows.
3. POST <token>/pay from the page's origin, with the amount it showed: a
   PaymentIntent's client secret.
4. Confirms it with Stripe's test card at localstripe, as Stripe.js does.
5. Polls <token>/status until the webhook has applied the payment.
The last line is checkable: `paid through the pay page: <invoice> <amount>`.
"""

import html
import json
import re
import sys
import time
import urllib.parse
import urllib.request


def fetch(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def main():
    moto, page, stripe, recipient = sys.argv[1:5]
    data = json.loads(fetch(f"{moto}/moto-api/data.json"))
    texts = [m["message"] for m in data.get("sns", {}).get("SMS", []) if m["phone_number"] == recipient]
    texts += [m.get("body") or "" for m in data.get("ses", {}).get("Message", [])
              if recipient in m["destinations"]["ToAddresses"]]
    # A token may end in `-`, after which `\b` would not match: the end is
    # any character that cannot be in a token.
    tokens = [t for text in texts for t in re.findall(r"https?://[^\s\"<]+/([A-Za-z0-9_-]{16})(?![A-Za-z0-9_-])", text)]
    if not tokens:
        sys.exit(f"no pay link in the messages to {recipient}")
    token = tokens[-1]
    url = f"{page}/{token}"
    print(f"the customer opens {url}")
    body = fetch(url)
    invoice = re.search(r'data-invoice-id="([^"]+)"', body).group(1)
    owed = html.unescape(re.search(r'class="outstanding">([^<]+)<', body).group(1))
    # What the Pay button sends back: the amount the page showed.
    shown = re.search(r'data-amount="([^"]+)"', body).group(1)
    print(f"the page shows invoice {invoice}, to pay {owed}")
    origin = re.match(r"https?://[^/]+", page).group(0)
    answer = json.loads(fetch(f"{url}/pay", data=urllib.parse.urlencode({"invoice": invoice, "amount": shown}).encode(),
                              headers={"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"}))
    secret = answer["client_secret"]
    intent = secret.split("_secret_")[0]
    print(f"the page made PaymentIntent {intent}; the customer pays with Stripe's test card 4242 4242 4242 4242")
    card = {"number": "4242424242424242", "exp_month": "12", "exp_year": "2034", "cvc": "123"}
    confirmed = json.loads(fetch(f"{stripe}/v1/payment_intents/{intent}/_confirm_with_card",
                                 data=json.dumps({"key": "pk_test_localstripe", "client_secret": secret,
                                                  "card": card}).encode()))
    print(f"Stripe: {confirmed['status']}; the webhook applies it")
    for _ in range(200):
        state = json.loads(fetch(f"{url}/status?invoice={urllib.parse.quote(invoice)}"))["state"]
        if state == "paid":
            break
        time.sleep(0.1)
    else:
        sys.exit(f"{invoice} was not paid: {state}")
    shown = fetch(url)
    note = re.search(r'class="note paid">([^<]+)<', shown)
    print(f"the page now says: {html.unescape(note.group(1)) if note else 'paid'}")
    print(f"paid through the pay page: {invoice} {owed}")


if __name__ == "__main__":
    main()
