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
  // typed, no canned response chosen, no request of the panel on its way.
  window.ccrTyped = function () {
    const fields = document.querySelectorAll("#actions textarea, #actions input[type=text], #actions .canned select");
    const busy = document.querySelector("#actions .htmx-request");
    return busy || Array.from(fields).some((f) => f.value.trim() !== "") ? "1" : "0";
  };

  // A poll answered before the agent started must not replace the forms they are now working in.
  document.addEventListener("htmx:oobBeforeSwap", (event) => {
    if (event.detail.target.id === "actions" && window.ccrTyped() === "1") event.detail.shouldSwap = false;
  });

  function span(seconds) {
    seconds = Math.floor(Math.abs(seconds));
    const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
    const m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + String(m).padStart(2, "0") + "m";
    if (m) return m + "m " + String(s).padStart(2, "0") + "s";
    return s + "s";
  }

  function tick() {
    const now = Date.now();
    document.querySelectorAll("time.countdown[datetime]").forEach((el) => {
      const left = (Date.parse(el.getAttribute("datetime")) - now) / 1000;
      el.textContent = left >= 0 ? span(left) : "overdue " + span(left);
      if (left < 0) el.closest("tr")?.classList.add("sla-breached");
    });
  }

  setInterval(tick, 1000);
})();
