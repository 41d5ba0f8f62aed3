// Live station progress: poll the status JSON and update the page (no inline script: CSP).
(function () {
  "use strict";
  var root = document.getElementById("station");
  if (!root) { return; }
  var url = root.getAttribute("data-status-url");
  function text(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = value === null || value === undefined ? "" : String(value); }
  }
  function row(job) {
    var tr = document.createElement("tr");
    [job.id, job.request_id, job.phase_label || job.phase,
     job.result_label || ((job.outcome || "") + " " + (job.cause || "")),
     job.blank || "", job.chip_uid || ""].forEach(function (v) {
      var td = document.createElement("td");
      td.textContent = String(v);
      tr.appendChild(td);
    });
    return tr;
  }
  function tick() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) { return; }
        text("st-state", s.state_label || s.state);
        text("st-reason", s.pause_reason_label || s.pause_reason);
        text("st-printer", (s.printer_reasons || []).join(", "));
        text("st-printer-state", s.printer_state_label || "—");
        text("st-ribbon-level", s.ribbon_level === null || s.ribbon_level === undefined
            ? "—" : s.ribbon_level + " %");
        text("st-queue", String(s.queue_length));
        text("st-hopper", s.blanks_in_hopper);
        text("st-ribbon", s.ribbon_remaining);
        text("st-issued", s.issued);
        text("st-spoiled", s.spoiled);
        text("st-beat", s.heartbeat_at || "—");
        var body = document.getElementById("st-jobs");
        if (body) {
          while (body.firstChild) { body.removeChild(body.firstChild); }
          s.jobs.forEach(function (j) { body.appendChild(row(j)); });
        }
      })
      .catch(function () { /* keep the last state on a network hiccup */ });
  }
  setInterval(tick, 2000);
})();
