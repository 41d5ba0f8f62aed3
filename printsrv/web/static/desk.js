// The collector's signature, drawn with a finger, pen or mouse; sent as a PNG (CSP: no inline).
(function () {
  "use strict";
  var pad = document.getElementById("signature-pad");
  var field = document.getElementById("signature");
  var form = document.getElementById("desk-handover");
  if (!pad || !field || !form) { return; }
  var ctx = pad.getContext("2d");
  var drawing = false;
  var drawn = false;
  ctx.lineWidth = 2.5;
  ctx.lineCap = "round";
  ctx.strokeStyle = "#1a237e";
  function point(ev) {
    var box = pad.getBoundingClientRect();
    return [(ev.clientX - box.left) * pad.width / box.width,
            (ev.clientY - box.top) * pad.height / box.height];
  }
  pad.addEventListener("pointerdown", function (ev) {
    drawing = true;
    var p = point(ev);
    ctx.beginPath();
    ctx.moveTo(p[0], p[1]);
    pad.setPointerCapture(ev.pointerId);
  });
  pad.addEventListener("pointermove", function (ev) {
    if (!drawing) { return; }
    var p = point(ev);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
    drawn = true;
  });
  pad.addEventListener("pointerup", function () { drawing = false; });
  document.getElementById("signature-clear").addEventListener("click", function () {
    ctx.clearRect(0, 0, pad.width, pad.height);
    drawn = false;
  });
  form.addEventListener("submit", function () {
    field.value = drawn ? pad.toDataURL("image/png") : "";
  });
})();
