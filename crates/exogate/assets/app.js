// exogate: the only script. (1) The integrations page re-checks the Exchange Admin status when
// the tab regains focus (the technician comes back from Microsoft's consent tab), when the
// consent callback in another tab reports back, and on the Re-check button, and updates the
// badge without a reload. (2) The consent callback page tells other tabs it finished.
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  // (2) Consent callback page: announce the outcome to the other exogate tabs.
  var result = $("consent-result");
  if (result) {
    try {
      localStorage.setItem("exogate:consent", JSON.stringify({
        company: result.dataset.company, outcome: result.dataset.outcome, at: Date.now()
      }));
    } catch (e) { /* storage disabled: the focus re-check still works */ }
  }

  // Confirmation for dangerous forms.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      if (!window.confirm(f.dataset.confirm)) { ev.preventDefault(); }
    });
  });

  // (3) Request page: while the request is approved or executing, follow it live and reload
  // the page once it is finished (the server renders the verified result).
  var reqState = $("request-state");
  if (reqState && reqState.dataset.requestId) {
    var live = { approved: 1, executing: 1 };
    var follow = function () {
      if (!live[reqState.dataset.requestState]) { return; }
      fetch("/api/v1/requests/" + encodeURIComponent(reqState.dataset.requestId), {
        credentials: "same-origin", headers: { "accept": "application/json" }
      }).then(function (r) { return r.json(); }).then(function (body) {
        if (body.state && body.state !== reqState.dataset.requestState) {
          if (live[body.state]) {
            reqState.dataset.requestState = body.state;
            reqState.textContent = body.state;
          } else {
            window.location.reload();
            return;
          }
        }
        setTimeout(follow, 1000);
      }).catch(function () { setTimeout(follow, 5000); });
    };
    setTimeout(follow, 500);
  }

  // (4) Inventory page: "Sync now" / "Sync all" start sweeps through the API, then the page
  // follows them live by long-polling /api/v1/inventory/status?after=<version>; once nothing
  // runs any more it reloads so the as-of times and results are the server's.
  var syncBox = $("inventory-sync");
  if (syncBox) {
    var syncCsrf = syncBox.dataset.csrf;
    var version = 0;
    var following = false;
    var sawRunning = false;
    var paint = function (c) {
      var row = $("sync-" + c.company);
      if (!row) { return; }
      var p = c.sync;
      var bar = row.querySelector("progress.bar");
      var text = row.querySelector(".progress-text");
      var button = row.querySelector("button.sync-now");
      var fr = row.querySelector(".freshness");
      if (fr) { fr.textContent = c.freshness; fr.dataset.freshness = c.freshness; }
      if (!p) { return; }
      if (p.running) {
        bar.hidden = false;
        bar.max = Math.max(p.total, 1);
        bar.value = p.done;
        text.textContent = p.total > 0 ? (p.phase + " " + p.done + "/" + p.total) : p.phase;
      } else {
        bar.hidden = true;
        text.textContent = p.error ? ("failed: " + p.error) : ("done: " + p.mailboxes + " mailboxes, " + p.rows + " rows");
      }
      if (button) { button.disabled = !!p.running; }
    };
    var follow = function () {
      if (following) { return; }
      following = true;
      var step = function () {
        fetch("/api/v1/inventory/status?after=" + version, {
          credentials: "same-origin", headers: { "accept": "application/json" }
        }).then(function (r) { return r.json(); }).then(function (body) {
          version = body.version || version;
          (body.companies || []).forEach(paint);
          if (body.running) { sawRunning = true; step(); return; }
          following = false;
          if (sawRunning) { window.location.reload(); }
        }).catch(function () { following = false; setTimeout(follow, 5000); });
      };
      step();
    };
    document.querySelectorAll("form.sync-form").forEach(function (f) {
      f.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var company = f.querySelector("input[name=company]");
        var body = company ? { company: company.value } : {};
        fetch("/api/v1/inventory/sync", {
          method: "POST", credentials: "same-origin",
          headers: { "content-type": "application/json", "accept": "application/json", "x-csrf-token": syncCsrf },
          body: JSON.stringify(body)
        }).then(function (r) { return r.json(); }).then(function (b) {
          if (b.error) { window.alert(b.error.message); return; }
          sawRunning = true;
          follow();
        });
      });
    });
    // A sweep may already be running (started elsewhere): follow it.
    if (syncBox.querySelector("progress.bar:not([hidden])")) { sawRunning = true; follow(); }
  }

  // (1) Integrations page.
  var box = $("exchange-status");
  if (!box) { return; }
  var company = box.dataset.company;
  var csrf = box.dataset.csrf;
  var inFlight = false;
  var again = false;
  var lastRun = 0;
  var pollTimer = null;

  function render(s) {
    var badge = $("exchange-badge");
    badge.textContent = s.badge;
    badge.className = "badge " + s.colour;
    badge.dataset.state = s.state;
    box.dataset.state = s.state;
    $("exchange-fix").textContent = s.fix;
    var help = $("exchange-help");
    while (help.firstChild) { help.removeChild(help.firstChild); }
    (s.help || []).forEach(function (h) {
      var li = document.createElement("li");
      li.textContent = h;
      help.appendChild(li);
    });
    // The check just ran: "just now", with the exact time in `datetime` and the local one on hover.
    var last = $("last-check");
    while (last.firstChild) { last.removeChild(last.firstChild); }
    if (s.checked_at) {
      var when = document.createElement("time");
      when.dateTime = s.checked_at;
      when.title = new Date(s.checked_at).toLocaleString();
      when.textContent = "just now";
      last.appendChild(when);
    } else {
      last.textContent = "never";
    }
    $("check-detail").textContent = s.detail || "";
    $("check-warning").hidden = !s.check_failed;
    // While Microsoft propagates the role, keep looking.
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
    if (s.state === "propagating") { pollTimer = setTimeout(function () { recheck("poll"); }, 15000); }
  }

  var deferred = null;

  // Every trigger leads to a check that starts after it: while one runs, another follows; events
  // within a second of the last check are coalesced into one check a moment later.
  function recheck(why) {
    if (inFlight) { again = true; return; }
    var now = Date.now();
    var wait = lastRun + 1000 - now;
    if (why !== "button" && wait > 0) {
      if (!deferred) {
        deferred = setTimeout(function () { deferred = null; recheck("deferred"); }, wait);
      }
      return;
    }
    if (deferred) { clearTimeout(deferred); deferred = null; }
    lastRun = now;
    inFlight = true;
    $("recheck-state").textContent = "Checking…";
    fetch("/api/v1/companies/" + encodeURIComponent(company) + "/status/check", {
      method: "POST",
      credentials: "same-origin",
      headers: { "x-csrf-token": csrf, "accept": "application/json" }
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (x) {
      if (x.ok) {
        render(x.body);
        $("recheck-state").textContent = "";
      } else {
        $("recheck-state").textContent = (x.body.error && x.body.error.message) || "check failed";
      }
    }).catch(function () {
      $("recheck-state").textContent = "exogate could not be reached";
    }).then(function () {
      inFlight = false;
      if (again) { again = false; recheck("again"); }
    });
  }

  $("recheck").addEventListener("click", function () { recheck("button"); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { recheck("visible"); }
  });
  window.addEventListener("focus", function () { recheck("focus"); });
  window.addEventListener("storage", function (ev) {
    if (ev.key !== "exogate:consent" || !ev.newValue) { return; }
    try {
      var m = JSON.parse(ev.newValue);
      if (m.company === company) { recheck("consent"); }
    } catch (e) { /* ignore */ }
  });
  if (box.dataset.state === "propagating") { pollTimer = setTimeout(function () { recheck("poll"); }, 15000); }
})();
