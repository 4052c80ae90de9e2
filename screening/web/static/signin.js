"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Opening the sign-in page ends any earlier session on this tablet: the next user starts clean.
  sessionStorage.removeItem(LD.TOKEN_KEY);
  sessionStorage.removeItem(LD.USER_KEY);
  LD.$("#who").textContent = "";
  LD.$("#sign-out").hidden = true;
  const form = LD.$("#signin-form");
  LD.handleSubmit(form, async (ev) => {
    ev.preventDefault();
    const username = form.username.value.trim();
    const password = form.password.value;
    const errors = [];
    if (!username) errors.push({ field: "username", message: "Enter your username" });
    if (!password) errors.push({ field: "password", message: "Enter your password" });
    if (errors.length) return LD.showErrors(errors);
    try {
      const tok = await LD.api("POST", "/api/v1/auth/token", { body: new URLSearchParams({ username, password }) });
      sessionStorage.setItem(LD.TOKEN_KEY, tok.access_token);
      const me = await LD.api("GET", "/api/v1/auth/me");
      sessionStorage.setItem(LD.USER_KEY, JSON.stringify(me));
      LD.flush();
      const next = LD.param("next");
      // Only same-app paths: never an open redirect.
      const safe = next && next.startsWith("/app/") && !next.startsWith("//") ? next : null;
      location.assign(safe || LD.homeFor(me.role));
    } catch (err) {
      if (err instanceof LD.OfflineError) return LD.showErrors([{ field: null, message: `${err.message}: you cannot sign in now. ${err.again}` }]);
      if (err.status === 429) return LD.showErrors([{ field: "username", message: "Too many attempts: wait a few minutes and try again" }]);
      LD.showErrors([{ field: "password", message: "The username or password is not right" }]);
    }
  });
});
