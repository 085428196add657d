// The SOP draft editor: line numbers beside the YAML, and problems that jump to their line.
(function () {
  function lines(textarea) { return textarea.value.split("\n").length; }

  function renumber(editor) {
    var textarea = editor.querySelector("textarea"), gutter = editor.querySelector(".gutter");
    if (!textarea || !gutter) return;
    var count = lines(textarea), hits = {}, out = [];
    document.querySelectorAll("#draft-check .goto[data-line]").forEach(function (b) { hits[b.dataset.line] = true; });
    for (var i = 1; i <= count; i++) out.push(hits[i] ? '<span class="hit">' + i + "</span>" : String(i));
    gutter.innerHTML = out.join("\n") + "\n";
    fit(editor);
  }

  // The gutter is exactly as tall as the textarea, so a long draft scrolls both together, line for line.
  function fit(editor) {
    var textarea = editor.querySelector("textarea"), gutter = editor.querySelector(".gutter");
    if (!textarea || !gutter) return;
    gutter.style.height = textarea.offsetHeight + "px";
    gutter.scrollTop = textarea.scrollTop;
  }

  var resized = window.ResizeObserver ? new ResizeObserver(function (entries) {
    entries.forEach(function (e) { fit(e.target.closest(".yaml-editor")); });
  }) : null;
  function watch(editor) {
    var textarea = editor.querySelector("textarea");
    if (resized && textarea && !textarea.dataset.watched) { textarea.dataset.watched = "1"; resized.observe(textarea); }
  }

  function each(fn) { document.querySelectorAll(".yaml-editor").forEach(fn); }

  document.addEventListener("input", function (e) {
    if (e.target.closest && e.target.closest(".yaml-editor")) renumber(e.target.closest(".yaml-editor"));
  });
  document.addEventListener("scroll", function (e) {
    var editor = e.target.closest && e.target.closest(".yaml-editor");
    if (editor) editor.querySelector(".gutter").scrollTop = e.target.scrollTop;
  }, true);
  document.addEventListener("htmx:afterSwap", function () { each(renumber); each(watch); });
  document.addEventListener("DOMContentLoaded", function () { each(renumber); each(watch); });
  document.addEventListener("keydown", function (e) {
    // Tab indents by two spaces inside the editor instead of leaving it; Escape then Tab leaves.
    var textarea = e.target;
    if (e.key !== "Tab" || e.shiftKey || !textarea.closest || !textarea.closest(".yaml-editor") || textarea.readOnly) return;
    if (textarea.dataset.escaped) { delete textarea.dataset.escaped; return; }
    e.preventDefault();
    var start = textarea.selectionStart;
    textarea.setRangeText("  ", start, textarea.selectionEnd, "end");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  });
  document.addEventListener("keyup", function (e) {
    if (e.key === "Escape" && e.target.closest && e.target.closest(".yaml-editor")) e.target.dataset.escaped = "1";
  });
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest(".goto[data-line]");
    if (!button || !button.dataset.line) return;
    var textarea = document.querySelector(".yaml-editor textarea");
    if (!textarea) return;
    var wanted = parseInt(button.dataset.line, 10), text = textarea.value, start = 0;
    for (var n = 1; n < wanted && start !== -1; n++) start = text.indexOf("\n", start) + 1 || -1;
    if (start < 0) return;
    var end = text.indexOf("\n", start);
    textarea.focus();
    textarea.setSelectionRange(start, end < 0 ? text.length : end);
    var height = textarea.scrollHeight / Math.max(lines(textarea), 1);
    textarea.scrollTop = Math.max(0, (wanted - 3) * height);
  });
})();
