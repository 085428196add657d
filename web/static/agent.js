// The agent workspace's only script: inline refusals, counting clocks, and whether the agent has typed.
(function () {
  // A refused action (409), an invalid form (422), a rate limit (429) or Temporal out of reach (503) answers with the form and its
  // reason: swap it in place instead of dropping it as an error.
  htmx.config.responseHandling = [
    {code: "204", swap: false},
    {code: "^(409|422|429|503)$", swap: true, error: false},
    {code: "^[23]..$", swap: true},
    {code: "^[45]..$", swap: false, error: true},
  ];

  // Polling asks for fresh action forms only while the agent is not working in the current ones: nothing
  // typed, no canned response or choice picked, no request of the panel on its way. Fields the desk fills in
  // itself (the current category, priority) count only once the agent changes them; a text box that holds text
  // (a canned response, or what a refused form kept) counts as typed.
  window.ccrTyped = function () {
    const panel = document.getElementById("actions");
    if (!panel) return "0";
    if (panel.querySelector(".htmx-request")) return "1";
    const changed = (f) => f.tagName === "SELECT"
      ? Array.from(f.options).some((o) => o.selected !== o.defaultSelected)
      : f.value !== f.defaultValue;
    const working = Array.from(panel.querySelectorAll("textarea, input[type=text], select")).some((f) =>
      f.tagName === "TEXTAREA" ? f.value.trim() !== "" : changed(f));
    return working ? "1" : "0";
  };

  // A poll answered before the agent started must not replace the forms they are now working in.
  document.addEventListener("htmx:oobBeforeSwap", (event) => {
    if (event.detail.target.id === "actions" && window.ccrTyped() === "1") event.detail.shouldSwap = false;
  });

  // Dismissing a bulk action's result (or cancelling its question) clears it here; the link reloads without JS.
  document.addEventListener("click", (event) => {
    const link = event.target.closest("[data-dismiss]");
    if (!link) return;
    event.preventDefault();
    const result = document.getElementById("bulk-result");
    if (result) result.replaceChildren();
  });

  // The same unit as the server's (hours and minutes, never days), labelled the same way.
  function span(seconds) {
    seconds = Math.floor(Math.abs(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h) return h + "h " + String(m).padStart(2, "0") + "m";
    if (m) return m + "m " + String(s).padStart(2, "0") + "s";
    return s + "s";
  }

  const local = new Intl.DateTimeFormat(undefined, {weekday: "short", year: "numeric", month: "2-digit", day: "2-digit",
                                                    hour: "2-digit", minute: "2-digit", timeZoneName: "short"});

  function tick() {
    const now = Date.now();
    document.querySelectorAll("time.countdown[datetime]").forEach((el) => {
      const due = Date.parse(el.getAttribute("datetime"));
      const left = (due - now) / 1000;
      el.textContent = left >= 0 ? span(left) + " left" : "overdue by " + span(left);
      // The absolute due time on hover, in the viewer's own time zone (the server writes it in UTC).
      if (!el.dataset.local) {
        el.title = "due " + local.format(new Date(due));
        el.dataset.local = "1";
      }
      if (left < 0) el.closest("tr, td")?.classList.add("sla-breached");
    });
  }

  document.addEventListener("htmx:afterSettle", tick);
  setInterval(tick, 1000);
})();
