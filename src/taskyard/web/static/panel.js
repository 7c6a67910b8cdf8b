/* taskyard panel: local times, live refresh paused while hidden, confirmations,
   keyboard, and the output viewer (live SSE, ANSI colours). Text a task wrote only
   ever reaches the page through textContent: it cannot become markup or script. */
(function () {
  "use strict";
  var root = document.body.dataset.root || "";

  /* -- times: the browser's zone, UTC on hover -------------------------------- */
  function pad(n, w) { n = String(n); while (n.length < (w || 2)) n = "0" + n; return n; }
  function localTimes(scope) {
    var today = new Date().toDateString();
    (scope || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      var text = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
      if (d.toDateString() !== today) {
        text = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + text;
      }
      el.textContent = text;
    });
  }

  /* -- live refresh: only while the tab is visible ---------------------------- */
  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail && e.detail.elt;
    if (document.hidden && elt && elt.hasAttribute("data-live")) e.preventDefault();
  });
  document.addEventListener("htmx:afterSettle", function (e) {
    localTimes(e.detail.elt);
    selectRow(selected, false);
  });

  /* -- forms: confirmation of destructive actions, self-posting login links --- */
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) e.preventDefault();
  }, true);

  /* -- rows and keyboard ------------------------------------------------------- */
  var selected = -1;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("[data-rows] tbody tr[data-href]")); }
  function selectRow(i, scroll) {
    var all = rows();
    all.forEach(function (r) { r.classList.remove("selected"); });
    if (i < 0 || !all.length) return;
    selected = Math.min(i, all.length - 1);
    all[selected].classList.add("selected");
    if (scroll !== false) all[selected].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("click", function (e) {
    var help = e.target.closest && e.target.closest("[data-keys-help]");
    if (help) { document.getElementById("keys-help").showModal(); return; }
    var row = e.target.closest && e.target.closest("tr[data-href]");
    if (row && !e.target.closest("a, button, input, form")) window.location = row.dataset.href;
  });
  var pending = "";
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) {
      if (e.key === "Escape") t.blur();
      return;
    }
    var dialog = document.getElementById("keys-help");
    if (e.key === "?") { dialog.open ? dialog.close() : dialog.showModal(); e.preventDefault(); return; }
    if (e.key === "/") {
      var box = document.querySelector("[data-filter-focus]");
      if (box) { box.focus(); box.select(); e.preventDefault(); }
      return;
    }
    if (pending === "g" && e.key === "t") { window.location = root + "/tasks"; pending = ""; return; }
    pending = e.key === "g" ? "g" : "";
    if (e.key === "j") { selectRow(selected + 1); e.preventDefault(); }
    else if (e.key === "k") { selectRow(Math.max(0, selected - 1)); e.preventDefault(); }
    else if (e.key === "Enter" && selected >= 0 && rows()[selected]) { window.location = rows()[selected].dataset.href; }
  });

  /* -- ANSI SGR to spans (every other escape sequence is dropped) ------------- */
  function Ansi() { this.state = {}; this.rest = ""; }
  var ESC = /\x1b(?:\[([0-9;?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])/g;
  Ansi.prototype.apply = function (codes) {
    var s = this.state, n = codes.length ? codes.split(";").map(Number) : [0];
    for (var i = 0; i < n.length; i++) {
      var c = n[i];
      if (c === 0) { s = {}; }
      else if (c === 1) s.bold = true; else if (c === 2) s.dim = true;
      else if (c === 3) s.italic = true; else if (c === 4) s.underline = true;
      else if (c === 22) { s.bold = false; s.dim = false; }
      else if (c === 23) s.italic = false; else if (c === 24) s.underline = false;
      else if (c >= 30 && c <= 37) s.fg = c - 30; else if (c >= 90 && c <= 97) s.fg = c - 82;
      else if (c >= 40 && c <= 47) s.bg = c - 40; else if (c >= 100 && c <= 107) s.bg = c - 92;
      else if (c === 39) delete s.fg; else if (c === 49) delete s.bg;
      else if ((c === 38 || c === 48) && n[i + 1] === 5) { s[c === 38 ? "fg" : "bg"] = n[i + 2] & 255; i += 2; }
      else if ((c === 38 || c === 48) && n[i + 1] === 2) {
        s[c === 38 ? "fgrgb" : "bgrgb"] = "rgb(" + (n[i + 2] & 255) + "," + (n[i + 3] & 255) + "," + (n[i + 4] & 255) + ")";
        i += 4;
      }
    }
    this.state = s;
  };
  function color(i) {
    if (i < 16) return null;
    if (i >= 232) { var g = 8 + (i - 232) * 10; return "rgb(" + g + "," + g + "," + g + ")"; }
    i -= 16;
    var v = function (x) { return x ? 55 + x * 40 : 0; };
    return "rgb(" + v(Math.floor(i / 36)) + "," + v(Math.floor(i / 6) % 6) + "," + v(i % 6) + ")";
  }
  Ansi.prototype.span = function (text, into) {
    if (!text) return;
    var s = this.state, keys = Object.keys(s).filter(function (k) { return s[k] !== false; });
    if (!keys.length) { into.appendChild(document.createTextNode(text)); return; }
    var el = document.createElement("span");
    el.textContent = text;
    ["bold", "dim", "italic", "underline"].forEach(function (k) { if (s[k]) el.classList.add("a-" + k); });
    if (s.fg !== undefined) { if (s.fg < 16) el.classList.add("fg-" + s.fg); else el.style.color = color(s.fg); }
    if (s.bg !== undefined) { if (s.bg < 16) el.classList.add("bg-" + s.bg); else el.style.backgroundColor = color(s.bg); }
    if (s.fgrgb) el.style.color = s.fgrgb;
    if (s.bgrgb) el.style.backgroundColor = s.bgrgb;
    into.appendChild(el);
  };
  Ansi.prototype.render = function (text, into) {
    text = this.rest + text;
    this.rest = "";
    var cut = text.lastIndexOf("\x1b");
    if (cut >= 0 && cut > text.length - 40 && !/[@-~\x07]/.test(text.slice(cut + 2))) {
      this.rest = text.slice(cut);  /* an escape sequence split between two chunks */
      text = text.slice(0, cut);
    }
    var last = 0, m;
    ESC.lastIndex = 0;
    while ((m = ESC.exec(text)) !== null) {
      this.span(text.slice(last, m.index), into);
      if (m[2] === "m") this.apply(m[1]);
      last = ESC.lastIndex;
    }
    /* other control characters but newline and tab are shown as nothing */
    this.span(text.slice(last).replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, "").replace(/\r(?!\n)/g, "\n"), into);
  };

  /* -- the output viewer -------------------------------------------------------- */
  var TAIL = 64 * 1024, MAX_CHARS = 4 * 1024 * 1024;
  function b64bytes(b64) {
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function note(pre, text, before) {
    var el = document.createElement("span");
    el.className = "marker";
    el.textContent = text;
    if (before) pre.insertBefore(el, before); else pre.appendChild(el);
    return el;
  }
  function viewer(pre) {
    var base = root + "/api/v1/tasks/" + pre.dataset.task + "/output/" + pre.dataset.stream;
    var q = "?attempt=" + pre.dataset.attempt;
    var follow = document.querySelector("[data-follow]");
    var ansi = new Ansi(), decoder = new TextDecoder("utf-8");
    var body = document.createElement("span");
    var chars = 0, first = 0;
    function atBottom() { return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40; }
    function append(bytes) {
      var stick = follow && follow.checked && atBottom();
      var text = decoder.decode(bytes, { stream: true });
      chars += text.length;
      ansi.render(text, body);
      while (chars > MAX_CHARS && body.firstChild) {  /* keep the page light: trim the top */
        chars -= (body.firstChild.textContent || "").length;
        body.removeChild(body.firstChild);
        if (!pre.querySelector(".trimmed")) note(pre, "⋯ earlier output trimmed from view: use Download for all of it ⋯\n", body).classList.add("trimmed");
      }
      if (stick || (follow && follow.checked)) pre.scrollTop = pre.scrollHeight;
    }
    function earlierButton(upto) {
      if (upto <= 0) return;
      var btn = document.createElement("button");
      btn.type = "button";
      btn.className = "earlier";
      btn.textContent = "Load earlier output (" + upto.toLocaleString() + " bytes before)";
      btn.addEventListener("click", function () {
        var from = Math.max(0, upto - TAIL);
        fetch(base + q, { headers: { Range: "bytes=" + from + "-" + (upto - 1) }, credentials: "same-origin" })
          .then(function (r) { return r.arrayBuffer().then(function (buf) { return [r, buf]; }); })
          .then(function (got) {
            var chunk = document.createElement("span");
            new Ansi().render(new TextDecoder("utf-8").decode(got[1]), chunk);
            var range = got[0].headers.get("Content-Range") || "";
            var start = parseInt((range.match(/bytes (\d+)-/) || [0, from])[1], 10);
            btn.remove();
            pre.insertBefore(chunk, pre.firstChild);
            var dropped = got[0].headers.get("Taskyard-Dropped");
            if (dropped && start > from) note(pre, "⋯ bytes " + dropped + " were dropped by the output bound ⋯\n", chunk.nextSibling);
            earlierButtonAt(start);
          });
      });
      pre.insertBefore(btn, pre.firstChild);
    }
    function earlierButtonAt(upto) { earlierButton(upto); }
    fetch(base + q + "&limit=0", { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      var total = parseInt(r.headers.get("Taskyard-Total") || "0", 10);
      first = Math.max(0, total - TAIL);
      pre.textContent = "";
      pre.appendChild(body);
      earlierButton(first);
      var source = new EventSource(base + "/live" + q + "&offset=" + first);
      source.addEventListener("output", function (e) { append(b64bytes(JSON.parse(e.data).data)); });
      source.addEventListener("dropped", function (e) {
        var d = JSON.parse(e.data);
        note(body, "\n⋯ " + (d.to - d.from).toLocaleString() + " bytes dropped by the output bound (bytes " + d.from + "-" + d.to + ") ⋯\n");
      });
      source.addEventListener("end", function (e) {
        source.close();
        append(new Uint8Array(0));
        note(pre, "\n— end of output (" + JSON.parse(e.data).status + ") —");
        if (follow && follow.checked) pre.scrollTop = pre.scrollHeight;
      });
    }).catch(function (err) { pre.textContent = "output unavailable: " + err.message; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    document.querySelectorAll("form[data-autosubmit]").forEach(function (f) { f.submit(); });
    document.querySelectorAll("pre[data-output]").forEach(viewer);
  });
})();
