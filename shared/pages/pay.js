(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("pay-config").textContent);
  var panel = document.getElementById("pay-panel");
  if (typeof Stripe !== "function" || !panel) { return; }
  var stripe = Stripe(config.publishable_key);
  var card = stripe.elements().create("card");
  var message = document.getElementById("message");
  var confirm = document.getElementById("confirm");
  var invoice = null;
  var amount = null;
  var mounted = false;
  function say(text) { message.textContent = text; }
  function open(button, scroll) {
    invoice = button.getAttribute("data-invoice");
    amount = button.getAttribute("data-amount");
    document.getElementById("paying-for").textContent = button.getAttribute("data-label");
    panel.hidden = false;
    if (!mounted) { card.mount("#card"); mounted = true; }
    if (scroll) { panel.scrollIntoView(); }
  }
  var buttons = document.querySelectorAll("button[data-invoice]");
  Array.prototype.forEach.call(buttons, function (b) {
    b.hidden = false;
    b.addEventListener("click", function () { open(b, true); });
  });
  if (buttons.length === 1 && !config.many) { buttons[0].hidden = true; open(buttons[0], false); }
  document.getElementById("no-js").hidden = true;
  function poll(paying, tries) {
    // Given up after about a minute: the page as the server sees it now.
    if (tries <= 0) { window.location.reload(); return; }
    fetch(config.status_url + "?invoice=" + encodeURIComponent(paying), { credentials: "omit", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.state === "paid") { say(config.t.paid_now); window.location.reload(); }
        else { setTimeout(function () { poll(paying, tries - 1); }, 1500); }
      })
      .catch(function () { setTimeout(function () { poll(paying, tries - 1); }, 3000); });
  }
  confirm.addEventListener("click", function () {
    if (!invoice) { return; }
    // This payment's invoice and amount, whatever is clicked meanwhile.
    var paying = invoice;
    var shown = amount;
    confirm.disabled = true;
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    say(config.t.working);
    fetch(config.pay_url, {
      method: "POST",
      credentials: "omit",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "invoice=" + encodeURIComponent(paying) + "&amount=" + encodeURIComponent(shown)
    })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) { return { ok: r.ok, body: j }; });
      })
      .then(function (answer) {
        var error = answer.body.error;
        // Paid meanwhile, or another amount now: the page shows what is true.
        if (error === "amount_changed" || error === "nothing_to_pay") {
          say(answer.body.message);
          setTimeout(function () { window.location.reload(); }, 2500);
          return new Promise(function () {});
        }
        if (!answer.ok) { throw { ours: answer.body.message || config.t.failed }; }
        if (answer.body.state === "confirming") { return { paymentIntent: { status: "processing" } }; }
        return stripe.confirmCardPayment(answer.body.client_secret, { payment_method: { card: card } });
      })
      .then(function (result) {
        // Stripe's own message is in English: the customer reads ours.
        if (result.error) { throw { ours: config.t.failed }; }
        panel.hidden = true;
        var status = document.getElementById("status");
        status.hidden = false;
        status.textContent = config.t.confirming;
        poll(paying, 40);
      })
      .catch(function (e) {
        confirm.disabled = false;
        Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
        say((e && e.ours) || config.t.failed);
      });
  });
})();
