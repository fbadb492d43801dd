/*
 * Stand-in for Descope's <descope-wc> web component, served by the local
 * Descope emulator (mlflow_descope_auth.testing). Instead of running a flow
 * it lists the emulator's users; clicking one signs them in with real tokens
 * minted by the emulator. Events match the real component: `ready` once
 * rendered, `success` (detail: Descope's token response) and `error`
 * (detail: {errorCode, errorDescription, errorMessage}); tokens are kept in
 * localStorage as DS / DSR, as the real component does by default.
 *
 * Every user-supplied string is rendered with textContent, never as HTML.
 */
(function () {
  "use strict";

  if (!window.customElements || window.customElements.get("descope-wc")) {
    return;
  }

  // Where this script came from: the emulator, and so the default API base.
  var scriptOrigin = "";
  if (document.currentScript && document.currentScript.src) {
    scriptOrigin = new URL(document.currentScript.src, window.location.href).origin;
  }

  var STYLE = [
    ":host { display: block; font-family: system-ui, sans-serif; }",
    ".emulator { border: 1px dashed #888; border-radius: 8px; padding: 16px; max-width: 360px; }",
    ".title { margin: 0 0 4px; font-weight: 600; }",
    ".note { margin: 0 0 12px; font-size: 12px; color: #666; }",
    "button { display: block; width: 100%; margin: 6px 0; padding: 8px; cursor: pointer; text-align: left; }",
    "button[disabled] { cursor: wait; opacity: 0.6; }",
    ".roles { font-size: 12px; color: #555; }",
    ".fail { border-color: #c33; color: #c33; }",
  ].join("\n");

  function networkError(message) {
    return {
      errorCode: "E010503",
      errorDescription: "Descope emulator unreachable",
      errorMessage: String(message),
    };
  }

  function errorDetail(body, status) {
    if (body && typeof body === "object" && typeof body.errorCode === "string") {
      return {
        errorCode: body.errorCode,
        errorDescription: String(body.errorDescription || ""),
        errorMessage: String(body.errorMessage || ""),
      };
    }
    return {
      errorCode: "E010" + String(status).padStart(3, "0"),
      errorDescription: "Unexpected response",
      errorMessage: "HTTP " + status,
    };
  }

  function storeTokens(detail) {
    try {
      if (detail.sessionJwt) {
        window.localStorage.setItem("DS", detail.sessionJwt);
      }
      if (detail.refreshJwt) {
        window.localStorage.setItem("DSR", detail.refreshJwt);
      }
    } catch (ignored) {
      // Storage may be disabled (private mode); the event still carries the tokens.
    }
  }

  class DescopeWcStandIn extends HTMLElement {
    static get observedAttributes() {
      return ["project-id", "flow-id", "base-url", "tenant", "theme", "locale"];
    }

    constructor() {
      super();
      this.attachShadow({ mode: "open" });
      this._renderCount = 0;
      this._loadQueued = false;
    }

    connectedCallback() {
      this._scheduleLoad();
    }

    attributeChangedCallback(name, oldValue, newValue) {
      if (oldValue !== newValue) {
        this._scheduleLoad();
      }
    }

    // Attribute changes and connection in one task coalesce into one load.
    _scheduleLoad() {
      if (this._loadQueued) {
        return;
      }
      this._loadQueued = true;
      var self = this;
      queueMicrotask(function () {
        self._loadQueued = false;
        if (self.isConnected) {
          self._load();
        }
      });
    }

    get projectId() {
      return this.getAttribute("project-id") || "";
    }

    get flowId() {
      return this.getAttribute("flow-id") || "sign-up-or-in";
    }

    get baseUrl() {
      return (this.getAttribute("base-url") || scriptOrigin).replace(/\/+$/, "");
    }

    _debug(message) {
      if (this.hasAttribute("debug") && this.getAttribute("debug") !== "false") {
        console.debug("[descope-wc emulator] " + message);
      }
    }

    _emit(name, detail) {
      this.dispatchEvent(
        new CustomEvent(name, { detail: detail, bubbles: true, composed: true })
      );
    }

    async _load() {
      var renderId = ++this._renderCount;
      this._renderMessage("Loading users from the Descope emulator...");
      var url =
        this.baseUrl + "/emulator/users?project=" + encodeURIComponent(this.projectId);
      var response;
      var body;
      try {
        response = await fetch(url, { credentials: "omit" });
        body = await response.json().catch(function () {
          return null;
        });
      } catch (error) {
        if (renderId !== this._renderCount) {
          return;
        }
        this._renderMessage("The Descope emulator is unreachable.");
        this._emit("error", networkError(error));
        return;
      }
      if (renderId !== this._renderCount) {
        return;
      }
      if (!response.ok || !body || !Array.isArray(body.users)) {
        this._renderMessage("The Descope emulator refused to list users.");
        this._emit("error", errorDetail(body, response.status));
        return;
      }
      this._render(body.users, body.flowError || null);
      this._debug("rendered " + body.users.length + " users");
      this._emit("ready", {});
    }

    _renderMessage(text) {
      var root = this.shadowRoot;
      root.replaceChildren();
      var style = document.createElement("style");
      style.textContent = STYLE;
      var message = document.createElement("p");
      message.className = "note";
      message.textContent = text;
      root.append(style, message);
    }

    _render(users, flowError) {
      var root = this.shadowRoot;
      root.replaceChildren();
      var style = document.createElement("style");
      style.textContent = STYLE;

      var box = document.createElement("div");
      box.className = "emulator";
      box.setAttribute("part", "container");
      box.dataset.flowId = this.flowId;

      var title = document.createElement("p");
      title.className = "title";
      title.textContent = "Sign in (Descope emulator)";
      var note = document.createElement("p");
      note.className = "note";
      note.textContent = "Local test stand-in: choose a user.";
      box.append(title, note);

      var self = this;
      users.forEach(function (user) {
        box.append(self._userButton(user));
      });

      var fail = document.createElement("button");
      fail.type = "button";
      fail.id = "descope-fail";
      fail.className = "fail";
      fail.dataset.action = "fail";
      fail.textContent = "Fail sign-in";
      fail.addEventListener("click", function () {
        self._emit("error", errorDetail(flowError, 401));
      });
      box.append(fail);

      root.append(style, box);
    }

    _userButton(user) {
      var loginId = String(user.loginId);
      var button = document.createElement("button");
      button.type = "button";
      button.id = "descope-user-" + loginId;
      button.dataset.loginId = loginId;
      var label = document.createElement("span");
      label.textContent = user.name ? user.name + " (" + loginId + ")" : loginId;
      var roles = document.createElement("div");
      roles.className = "roles";
      roles.textContent = Array.isArray(user.roles) ? user.roles.join(", ") : "";
      button.append(label, roles);
      var self = this;
      button.addEventListener("click", function () {
        self._signIn(loginId);
      });
      return button;
    }

    _setBusy(busy) {
      this.shadowRoot.querySelectorAll("button").forEach(function (button) {
        button.disabled = busy;
      });
    }

    async _signIn(loginId) {
      this._setBusy(true);
      var url =
        this.baseUrl + "/emulator/flow/" + encodeURIComponent(this.flowId) + "/login";
      var payload = { loginId: loginId };
      if (this.getAttribute("tenant")) {
        payload.tenant = this.getAttribute("tenant");
      }
      var response;
      var body;
      try {
        response = await fetch(url, {
          method: "POST",
          credentials: "omit",
          headers: {
            "Content-Type": "application/json",
            Authorization: "Bearer " + this.projectId,
          },
          body: JSON.stringify(payload),
        });
        body = await response.json().catch(function () {
          return null;
        });
      } catch (error) {
        this._setBusy(false);
        this._emit("error", networkError(error));
        return;
      }
      this._setBusy(false);
      if (!response.ok || !body || typeof body.sessionJwt !== "string") {
        this._emit("error", errorDetail(body, response.status));
        return;
      }
      storeTokens(body);
      this._debug("signed in");
      this._emit("success", body);
    }
  }

  window.customElements.define("descope-wc", DescopeWcStandIn);
})();
