"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  if (!LD.requireSignIn("nurse")) return;
  const id = LD.param("id");
  const form = LD.$("#consent-form");
  let screen;
  try {
    screen = (await LD.loadScreen(id)).screen;
  } catch (err) {
    return LD.showErrors([{ field: null, message: "Could not load the screen: " + err.message }]);
  }
  LD.caption(screen);
  if (screen.status === "final") return location.replace(`/app/assessment?id=${encodeURIComponent(id)}`);
  const c = screen.consent;
  if (c && screen.status === "draft") {
    LD.$("#already").hidden = false;
    LD.$("#continue-link").href = `/app/questions?id=${encodeURIComponent(id)}`;
  }
  if (c) {
    const set = (name, yes) => { const r = form.querySelector(`input[name=${name}][value=${yes ? "yes" : "no"}]`); if (r) r.checked = true; };
    set("screening", c.screening); set("share_with_health", c.share_with_health); set("share_with_court", c.share_with_court);
    const cap = form.querySelector(`input[name=capacity][value=${c.capacity}]`); if (cap) cap.checked = true;
  }
  const value = (name) => (form.querySelector(`input[name=${name}]:checked`) || {}).value;
  // Declining screening makes the sharing questions moot: they are recorded as "no".
  form.addEventListener("change", () => {
    const declined = value("screening") === "no";
    for (const n of ["share_with_health", "share_with_court"]) form.querySelectorAll(`input[name=${n}]`).forEach((i) => { i.disabled = declined; });
  });
  LD.handleSubmit(form, async (ev) => {
    ev.preventDefault();
    const screening = value("screening");
    const errors = [];
    if (!screening) errors.push({ field: "screening", message: "Select whether the person agrees to be screened" });
    if (screening !== "no") {
      if (!value("share_with_health")) errors.push({ field: "share_with_health", message: "Select whether information may be shared with health services" });
      if (!value("share_with_court")) errors.push({ field: "share_with_court", message: "Select whether information may be shared with the police, CPS and the court" });
    }
    if (!value("capacity")) errors.push({ field: "capacity", message: "Select your judgement of their capacity" });
    if (errors.length) return LD.showErrors(errors);
    const body = {
      screening: screening === "yes",
      share_with_health: screening === "yes" && value("share_with_health") === "yes",
      share_with_court: screening === "yes" && value("share_with_court") === "yes",
      capacity: value("capacity"),
    };
    try {
      const s = await LD.api("PUT", `/api/v1/screens/${encodeURIComponent(id)}/consent`, { body });
      await LD.rememberScreen(s);
      LD.showErrors([]);
      if (s.status === "declined") {
        form.hidden = true;
        const d = LD.$("#declined");
        d.hidden = false;
        d.focus();
      } else {
        location.assign(`/app/questions?id=${encodeURIComponent(id)}`);
      }
    } catch (err) {
      LD.showErrors([{ field: null, message: err instanceof LD.OfflineError ? `${err.message}: consent was not saved. ${err.again}` : "Consent was not saved: " + err.message }]);
    }
  });
});
