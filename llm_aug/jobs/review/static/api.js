/* The review server's JSON API. Every call carries the session token (X-Review-Token). */
"use strict";

window.Review = window.Review || {};

(function (R) {
  const TOKEN = new URLSearchParams(window.location.search).get("token") || "";

  class ApiError extends Error {
    /* status 0: the server could not be reached (stopped, restarting, network down). */
    constructor(status, message) {
      super(message);
      this.status = status;
    }
    get retryable() {
      return this.status === 0 || this.status >= 500;
    }
  }

  async function call(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: Object.assign({ "X-Review-Token": TOKEN }, body === undefined ? {} : { "Content-Type": "application/json" }),
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (err) {
      throw new ApiError(0, "the review server does not answer (stopped?)");
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const message = (data && data.error) || text || response.statusText;
      throw new ApiError(response.status, message);
    }
    return data;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== "" && value !== null && value !== undefined && value !== false) q.set(key, value);
    }
    const s = q.toString();
    return s ? "?" + s : "";
  }

  R.ApiError = ApiError;
  R.api = {
    session: () => call("GET", "api/session"),
    queue: (filters) => call("GET", "api/queue" + query(filters)),
    item: (id) => call("GET", "api/items/" + encodeURIComponent(id)),
    status: () => call("GET", "api/status"),
    decide: (decision) => call("POST", "api/decisions", decision),
  };
})(window.Review);
