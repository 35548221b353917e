"""localstripe (a Stripe emulator from PyPI, pinned in requirements.txt) on
127.0.0.1 only, starting empty and keeping nothing on disk.

Usage: python scripts/localstripe_server.py PORT

`localstripe --port P` binds every interface and saves its store to
/tmp/localstripe.pickle; this wrapper serves the same aiohttp application on
loopback and keeps the store in memory.

One gap of localstripe 1.15.10 is filled here, and only this one: its fake
Stripe.js implements `confirmCardPayment(clientSecret)` as the 3-D Secure
step alone, ignoring `{payment_method: {card: cardElement}}`, so a
PaymentIntent created without a payment method (the flow Stripe documents,
and the one the pay page uses) can never be confirmed. Real Stripe.js creates
a PaymentMethod from the Card Element and confirms the intent with it. The
script appended below does that through one extra route, which creates the
PaymentMethod and confirms the intent with localstripe's own classes (so
declines, 3-D Secure cards and the `payment_intent.succeeded` webhook all
behave as localstripe implements them).
"""

import json
import sys

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError

# Nothing to disk: tests run several emulators at once and start empty.
resources.store.dump_to_disk = lambda: None

CONFIRM_WITH_CARD = """
;(function () {
  var base = LOCALSTRIPE_BASE_API;
  var makeStripe = Stripe;
  Stripe = function (key) {
    var stripe = makeStripe(key);
    var authenticate = stripe.confirmCardPayment;
    stripe.confirmCardPayment = async function (clientSecret, data) {
      var card = data && data.payment_method && data.payment_method.card;
      if (card && card.value && card.value.card) {
        var pi = clientSecret.match(/^(pi_\\w+)_secret_/)[1];
        var response = await fetch(base + '/v1/payment_intents/' + pi + '/_confirm_with_card', {
          method: 'POST',
          body: JSON.stringify({key: key, client_secret: clientSecret, card: card.value.card}),
        });
        var body = await response.json().catch(function () { return {}; });
        if (response.status !== 200 || body.error) { return {error: body.error || {message: 'declined'}}; }
        if (body.status !== 'requires_action') { return {paymentIntent: body}; }
      }
      return authenticate(clientSecret, data);
    };
    return stripe;
  };
})();
"""


def error(status, message):
    return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=status)


async def confirm_with_card(request, intent_id):
    data = await request.json()
    if not str(data.get("key", "")).startswith("pk_"):
        return error(401, "Unauthorized")
    try:
        intent = resources.PaymentIntent._api_retrieve(intent_id)
    except UserError:
        return error(404, "No such payment_intent")
    if data.get("client_secret") != intent.client_secret:
        return error(401, "Unauthorized")
    if intent.status not in ("requires_payment_method", "requires_confirmation"):
        return error(400, "This PaymentIntent cannot be confirmed in its status " + intent.status)
    card = data.get("card") or {}
    try:
        method = resources.PaymentMethod(
            type="card",
            card={k: card.get(k) for k in ("number", "exp_month", "exp_year", "cvc")},
        )
        intent.payment_method = method.id
        intent._confirm(on_failure_now=intent._report_failure)
    except UserError as e:
        return web.json_response(e.body, status=e.code)
    return web.json_response(json.loads(json.dumps(intent._export(), default=str)))


@web.middleware
async def fill_the_gap(request, handler):
    if request.method == "POST" and request.path.endswith("/_confirm_with_card"):
        return await confirm_with_card(request, request.path.split("/")[-2])
    response = await handler(request)
    if request.path == "/js.stripe.com/v3/" and response.status == 200:
        text = response.text + CONFIRM_WITH_CARD
        return web.Response(text=text, content_type="application/javascript")
    return response


def main():
    port = int(sys.argv[1])
    server.app.middlewares.insert(0, fill_the_gap)
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
