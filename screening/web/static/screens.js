"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  if (!LD.requireSignIn("nurse")) return;
  const { el, $ } = LD;
  const today = new Date().toISOString().slice(0, 10);
  const statusText = { draft: "Draft", declined: "Declined", final: "Final" };
  try {
    const page = await LD.api("GET", `/api/v1/screens?created_on=${today}&limit=100`);
    const body = $("#screens-table tbody");
    body.replaceChildren();
    for (const s of page.items) {
      const next = s.status === "draft" ? `/app/consent?id=${encodeURIComponent(s.id)}` : `/app/assessment?id=${encodeURIComponent(s.id)}`;
      body.append(el("tr", {},
        el("td", { text: s.custody_record }),
        el("td", { text: s.custody_suite }),
        el("td", { text: LD.fmtTime(s.created_at) }),
        el("td", {}, el("strong", { class: "tag tag--" + s.status, text: statusText[s.status] || s.status })),
        el("td", {}, el("a", { href: next, class: "table-link" }, s.status === "draft" ? "Continue" : "View", el("span", { class: "visually-hidden", text: " screen " + s.custody_record })))
      ));
    }
    $("#screens-table").hidden = page.items.length === 0;
    $("#screens-empty").hidden = page.items.length !== 0;
  } catch (err) {
    const box = $("#screens-error");
    box.hidden = false;
    box.textContent = err instanceof LD.OfflineError ? `${err.message}: today's list cannot be loaded. Open screens still work.` : "Could not load screens: " + err.message;
  }
});
