/* taskyard panel: local times, live refresh paused while hidden, confirmations,
   keyboard, the output viewer (live SSE, ANSI colours) and live messages. Text a task wrote only
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
  var TERMINAL = ["succeeded", "failed", "stopped"], loadedStatus = null;
  document.addEventListener("visibilitychange", function () {  /* catch up at once */
    if (!document.hidden && window.htmx) window.htmx.trigger(document.body, "taskyard:refresh");
  });
  document.addEventListener("htmx:afterSettle", function (e) {
    localTimes(document);
    selectRow(selected, false);
    /* a task page showing the latest attempt (or none yet): a new attempt is a new page */
    var live = document.getElementById("task-live");
    if (live) {
      var pre = document.querySelector("pre[data-output][data-latest]");
      var now = parseInt(live.dataset.attempts || "0", 10);
      var ended = TERMINAL.indexOf(live.dataset.status) >= 0 && TERMINAL.indexOf(loadedStatus) < 0;
      if (ended || (pre && now > parseInt(pre.dataset.attempt, 10)) || (document.querySelector("[data-no-output]") && now > 0)) {
        window.location.reload();  /* its result, attempts and forms as they are now */
      }
    }
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

  /* -- the output viewer -------------------------------------------------------
     Only the end of a stream is loaded (TAIL bytes, then live over SSE); earlier
     bytes are loaded on demand, backwards from there or forwards from the start, a
     CHUNK at a time. The output bound keeps a stream's head and tail and may drop
     the range between: that range is marked where it was, never loaded. */
  var TAIL = 64 * 1024, CHUNK = 64 * 1024, MAX_CHARS = 4 * 1024 * 1024;
  function b64bytes(b64) {
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function marker(text, cls) {
    var el = document.createElement("span");
    el.className = "marker" + (cls ? " " + cls : "");
    el.textContent = text;
    return el;
  }
  function num(n) { return Number(n).toLocaleString(); }
  function rendered(bytes) {
    var box = document.createElement("span");
    new Ansi().render(new TextDecoder("utf-8").decode(bytes), box);
    return box;
  }
  function dropped(r) {
    var m = (r.headers.get("Taskyard-Dropped") || "").match(/^(\d+)-(\d+)$/);
    return m ? { from: parseInt(m[1], 10), to: parseInt(m[2], 10) } : null;
  }
  function viewer(pre) {
    var base = root + "/api/v1/tasks/" + pre.dataset.task + "/output/" + pre.dataset.stream;
    var q = "?attempt=" + pre.dataset.attempt;
    var follow = document.querySelector("[data-follow]");
    var ansi = new Ansi(), decoder = new TextDecoder("utf-8");
    var head = document.createElement("span"), tail = document.createElement("span");
    var bar = document.createElement("span");
    bar.className = "gap-bar";
    /* bytes [0, front) are shown in head, [back, ...) in tail; gap: a dropped range
       (exact: its start is known too) */
    var front = 0, back = 0, gap = null, trimmed = false, chars = 0, busy = false, started = false;
    function atBottom() { return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40; }
    /* following: the pane stays at the end while it is there; scrolled up, it stays put */
    function following() { return follow && follow.checked && atBottom(); }
    function stick() { pre.scrollTop = pre.scrollHeight; }
    if (follow) {
      pre.addEventListener("scroll", function () { if (follow.checked && !atBottom() && !busy) follow.checked = false; });
      follow.addEventListener("change", function () { if (follow.checked) stick(); });
    }
    function button(label, action) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "earlier";
      b.textContent = label;
      b.addEventListener("click", function () {
        if (busy) return;
        busy = true;
        bar.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
        action().catch(function (err) { bar.appendChild(marker("could not load: " + err.message)); })
          .then(function () { busy = false; update(); });
      });
      bar.appendChild(b);
    }
    function update() {
      bar.textContent = "";
      if (trimmed) { bar.appendChild(marker("⋯ earlier output trimmed from view: Download has it ⋯")); return; }
      if (front >= back) { if (bar.parentNode) bar.remove(); return; }
      if (gap && !gap.exact && back <= gap.to) {
        bar.appendChild(marker("⋯ the output bound dropped bytes before byte " + num(gap.to) + " (it keeps a stream's first bytes and its last) ⋯", "dropped"));
        button("Show the first bytes", forwards);
      } else {
        bar.appendChild(marker("⋯ " + num(back - front) + " earlier bytes not loaded ⋯"));
        button("Load earlier", backwards);
        if (front === 0) button("Load from the start", forwards);
        else button("Load more", forwards);
      }
    }
    function get(url, range) {
      var opts = { credentials: "same-origin" };
      if (range) opts.headers = { Range: range };
      return fetch(url, opts).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.arrayBuffer().then(function (buf) { return { r: r, data: new Uint8Array(buf) }; });
      });
    }
    function markGap(into, before) {
      var text = "⋯ " + num(gap.to - gap.from) + " bytes dropped by the output bound (bytes " + num(gap.from) + "–" + num(gap.to) + ") ⋯\n";
      var el = marker(text, "dropped");
      if (before) into.insertBefore(el, before); else into.appendChild(el);
    }
    function backwards() {  /* the CHUNK before back */
      var end = back;
      if (gap && gap.exact && end <= gap.to && end > gap.from) {  /* jump over a known gap */
        markGap(tail, tail.firstChild);
        back = end = gap.from;
        if (front >= back) return Promise.resolve();
      }
      var start = Math.max(front, end - CHUNK);
      return get(base + q, "bytes=" + start + "-" + (end - 1)).then(function (got) {
        var d = dropped(got.r), data = got.data, first = start;
        if (d) {  /* start lay in the dropped range: the data begins after it */
          first = d.to;
          data = data.subarray(0, Math.max(0, end - first));
          gap = { from: d.from, to: d.to, exact: false };
        }
        var scroll = pre.scrollHeight - pre.scrollTop;
        tail.insertBefore(rendered(data), tail.firstChild);
        back = Math.min(back, d ? first : start);
        pre.scrollTop = pre.scrollHeight - scroll;  /* keep what was in view in view */
      });
    }
    function forwards() {  /* the CHUNK after front */
      return get(base + q + "&offset=" + front + "&limit=" + CHUNK).then(function (got) {
        var d = dropped(got.r), data = got.data, first = front;
        if (d) {  /* front is where the kept head ends: the dropped range is known */
          gap = { from: d.from, to: d.to, exact: true };
          markGap(head);
          first = d.to;
        }
        data = data.subarray(0, Math.max(0, back - first));
        head.appendChild(rendered(data));
        front = first + data.length;
        if (gap && gap.exact && front >= gap.from && back <= gap.to) front = back;
      });
    }
    function append(bytes) {
      var keep = following();
      var text = decoder.decode(bytes, { stream: true });
      chars += text.length;
      ansi.render(text, tail);
      while (chars > MAX_CHARS && tail.firstChild) {  /* keep the page light: trim the top */
        chars -= (tail.firstChild.textContent || "").length;
        tail.removeChild(tail.firstChild);
        if (!trimmed) { trimmed = true; if (!bar.parentNode) pre.insertBefore(bar, tail); update(); }
      }
      if (keep) stick();
    }
    get(base + q + "&limit=0").then(function (got) {
      var total = parseInt(got.r.headers.get("Taskyard-Total") || "0", 10);
      front = 0;
      back = Math.max(0, total - TAIL);
      pre.textContent = "";
      pre.appendChild(head);
      pre.appendChild(bar);
      pre.appendChild(tail);
      update();
      var source = new EventSource(base + "/live" + q + "&offset=" + back);
      source.addEventListener("output", function (e) { started = true; append(b64bytes(JSON.parse(e.data).data)); });
      source.addEventListener("dropped", function (e) {
        var d = JSON.parse(e.data);
        if (!started && d.from === back) {  /* the tail began inside the dropped range */
          gap = { from: d.from, to: d.to, exact: false };
          back = d.to;
          update();
          return;
        }
        tail.appendChild(marker("\n⋯ " + num(d.to - d.from) + " bytes dropped by the output bound (bytes " + num(d.from) + "–" + num(d.to) + ") ⋯\n", "dropped"));
      });
      source.addEventListener("end", function (e) {
        source.close();
        append(new Uint8Array(0));
        var keep = following();
        pre.appendChild(marker("\n— end of output (" + JSON.parse(e.data).status + ") —", "end"));
        pre.dataset.ended = "1";
        if (keep) stick();
      });
    }).catch(function (err) { pre.textContent = "output unavailable: " + err.message; });
  }

  /* -- messages: a running task's new ones as they come (SSE, the event id is the
     message number), each shown as JSON text; the list keeps the last SHOWN ------ */
  var SHOWN = 100;
  function sortedJson(value) {  /* as the server shows it: keys sorted, indent 2 */
    return JSON.stringify(value, function (key, v) {
      if (!v || typeof v !== "object" || Array.isArray(v)) return v;
      var out = {};
      Object.keys(v).sort().forEach(function (k) { out[k] = v[k]; });
      return out;
    }, 2);
  }
  function messageItem(m) {
    var li = document.createElement("li"), n = document.createElement("span");
    li.value = m.n;
    n.className = "n";
    n.textContent = String(m.n);
    li.appendChild(n);
    if (m.raw) {
      var flag = document.createElement("span");
      flag.className = "hint";
      flag.title = "the task wrote a line that was not JSON";
      flag.textContent = "text";
      n.appendChild(document.createTextNode(" "));
      n.appendChild(flag);
    }
    var pre = document.createElement("pre");
    pre.className = "json";
    pre.textContent = sortedJson(m.value);
    li.appendChild(pre);
    return li;
  }
  function messages(section) {
    var list = section.querySelector(".messages-list"), count = section.querySelector("[data-count]");
    var droppedNote = section.querySelector("[data-dropped-note]"), lastNote = section.querySelector("[data-last-note]");
    var dropped = parseInt(section.dataset.dropped || "0", 10);
    var url = root + "/api/v1/tasks/" + section.dataset.task + "/messages/live?attempt=" +
      section.dataset.attempt + "&since=" + section.dataset.next;
    var source = new EventSource(url);
    function atEnd() { return list.scrollHeight - list.scrollTop - list.clientHeight < 40; }
    list.scrollTop = list.scrollHeight;  /* the newest in view; scrolled up, it stays put */
    source.addEventListener("message", function (e) {
      var m = JSON.parse(e.data), keep = section.hidden || atEnd();
      list.appendChild(messageItem(m));
      while (list.children.length > SHOWN) list.removeChild(list.firstChild);
      count.textContent = num(m.n + 1);
      section.dataset.next = String(m.n + 1);
      if (list.firstChild && list.firstChild.value > 0) {
        lastNote.querySelector("[data-shown]").textContent = String(list.children.length);
        lastNote.hidden = false;
      }
      section.hidden = false;
      if (keep) list.scrollTop = list.scrollHeight;
    });
    source.addEventListener("dropped", function (e) {
      var d = JSON.parse(e.data);
      dropped += d.to - d.from;
      droppedNote.textContent = num(dropped) + " dropped by the messages bound (the first 1,000 and the last are kept).";
      droppedNote.hidden = false;
    });
    source.addEventListener("end", function () { source.close(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("task-live");
    if (live) loadedStatus = live.dataset.status;
    localTimes(document);
    document.querySelectorAll("form[data-autosubmit]").forEach(function (f) { f.submit(); });
    document.querySelectorAll("pre[data-output]").forEach(viewer);
    document.querySelectorAll("section[data-messages-live]").forEach(messages);
  });
})();
