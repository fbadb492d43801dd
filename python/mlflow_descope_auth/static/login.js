// The login page's only script: hands the Descope web component's tokens to
// the server, which verifies them and sets the HttpOnly cookies. Tokens are
// never written to cookies from here, and copies the component kept in
// localStorage are removed before leaving the page.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("descope-login-config").textContent);
  var errorBox = document.getElementById("login-error");
  var component = document.querySelector("descope-wc");

  function showError(text) {
    errorBox.textContent = text; // text, never HTML
    errorBox.hidden = false;
  }

  function storedToken(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  function forgetStoredTokens() {
    config.localStorageKeys.forEach(function (key) {
      try {
        window.localStorage.removeItem(key);
      } catch (e) {
        // storage unavailable: nothing was kept there either
      }
    });
  }

  function requestedNext() {
    return new URLSearchParams(window.location.search).get("next");
  }

  async function postJson(url, payload) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(payload),
    });
  }

  async function messageOf(response, fallback) {
    try {
      var body = await response.json();
      return body.message || fallback;
    } catch (e) {
      return fallback;
    }
  }

  async function onSuccess(event) {
    var detail = event.detail || {};
    var payload = {
      sessionJwt: detail.sessionJwt || storedToken("DS"),
      refreshJwt: detail.refreshJwt || storedToken("DSR"),
      next: requestedNext(),
    };
    forgetStoredTokens();
    if (!payload.sessionJwt) {
      showError("Sign-in finished without a session token.");
      return;
    }
    var response = await postJson(config.sessionUrl, payload);
    if (!response.ok) {
      showError(await messageOf(response, "Sign-in was refused (" + response.status + ")."));
      return;
    }
    var target = (await response.json()).redirect;
    // A browser that refused the cookie would send us straight back here.
    var check = await fetch(config.userUrl, { credentials: "same-origin" });
    if (!check.ok) {
      showError("The browser did not keep the session cookie; allow cookies for this site.");
      return;
    }
    if (target.indexOf("#") === -1) {
      target += window.location.hash;
    }
    window.location.replace(target);
  }

  component.addEventListener("success", function (event) {
    onSuccess(event).catch(function () {
      showError("Sign-in could not be completed; try again.");
    });
  });

  component.addEventListener("error", function (event) {
    var detail = event.detail || {};
    showError(detail.errorMessage || detail.errorDescription || "Sign-in failed.");
  });
})();
