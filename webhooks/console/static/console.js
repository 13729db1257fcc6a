// The console's only script besides htmx: no inline script anywhere (the CSP forbids it).
// - every htmx request that writes carries the CSRF token from <meta name="csrf-token">;
// - a refused or failed htmx request says so in the live region instead of failing silently.
(function () {
  "use strict";
  var SAFE = { GET: true, HEAD: true, OPTIONS: true };

  function token() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function say(message) {
    var flash = document.getElementById("flash");
    if (flash) { flash.textContent = message; }
  }

  document.addEventListener("htmx:configRequest", function (event) {
    if (!SAFE[event.detail.verb.toUpperCase()]) {
      event.detail.headers["X-CSRF-Token"] = token();
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    if (status === 403) { say("Not allowed: your role does not permit this."); }
    else if (status >= 500) { say("The server could not do this; it has been logged."); }
    else { say("The request was refused (" + status + ")."); }
  });

  document.addEventListener("htmx:sendError", function () {
    say("The server cannot be reached; the page will catch up when it can.");
  });
})();
