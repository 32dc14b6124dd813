// Copy buttons: a .essa-copy or .essa-copy-md button copies the text of the hidden .essa-copy-text
// element right after it (percent-encoded). One delegated listener, because the chat's HTML is sanitized (no inline
// handlers or data attributes survive) and re-rendered on each turn.
(function () {
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }
  function confirm(button, ok) {
    var old = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", old);
    button.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(function () { button.textContent = old; }, 1500);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".essa-copy, .essa-copy-md") : null;
    if (!button) return;
    var source = button.nextElementSibling;
    if (!source || !source.classList.contains("essa-copy-text")) return;
    event.preventDefault();
    var text = decodeURIComponent(source.textContent);
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { confirm(button, true); },
        function () { confirm(button, fallbackCopy(text)); });
    } else {
      confirm(button, fallbackCopy(text));
    }
  });
})();

// The viewer panel: a citation's "Show" link opens its page (or DOCX section) in the frame beside
// the chat instead of a new tab, and on a narrow screen, where the panel sits below the chat, brings
// it into view. Ctrl/Cmd/Shift-click and middle-click keep the browser's own behaviour (a new tab);
// Enter on a focused link is a click, so the keyboard works the same way.
(function () {
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.essa-open") : null;
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    // The panel on the tab the link is in (Ask, Facts): the only one shown.
    var frame = null;
    var frames = document.querySelectorAll("iframe.essa-viewer-frame");
    for (var i = 0; i < frames.length; i++) { if (frames[i].offsetParent) { frame = frames[i]; break; } }
    if (!frame) return;  // no panel on this tab: the link opens a new tab
    event.preventDefault();
    frame.src = link.href;
    var panel = frame.parentElement;
    if (panel && panel.getBoundingClientRect().top > window.innerHeight) {
      panel.scrollIntoView({behavior: "smooth", block: "start"});
    }
    frame.focus();
  });
})();

// The Facts table sorts by the column whose heading is chosen (again: the other way). Numbers sort
// as numbers, words as words; "not stated" cells always go last.
(function () {
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.essa-sort") : null;
    if (!button) return;
    var table = button.closest("table");
    var column = parseInt(button.dataset.column, 10);
    var th = button.parentElement;
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("thead th").forEach(function (h) { h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    function key(row) { var cell = row.cells[column]; return cell ? cell.dataset.sort || "" : ""; }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x === "" || y === "") return (x === "") - (y === "");
      var number = /^-?\d+(\.\d+)?$/;
      var order = (number.test(x.trim()) && number.test(y.trim()))
        ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
})();
