"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  if (!LD.requireSignIn("court")) return;
  const { el, $ } = LD;
  try {
    const page = await LD.api("GET", "/api/v1/court-reports?limit=100");
    const body = $("#reports-table tbody");
    body.replaceChildren(...page.items.map((r) => el("tr", {},
      el("td", { text: r.custody_record }),
      el("td", { text: r.custody_suite }),
      el("td", { text: LD.fmtDateTime(r.finalised_at) }),
      el("td", { text: r.finalised_by }),
      el("td", {}, el("a", { class: "table-link", href: `/app/report?id=${encodeURIComponent(r.screen_id)}&record=${encodeURIComponent(r.custody_record)}` },
        "Open report", el("span", { class: "visually-hidden", text: " for " + r.custody_record }))))));
    $("#reports-table").hidden = page.items.length === 0;
    $("#reports-empty").hidden = page.items.length !== 0;
  } catch (err) {
    const box = $("#reports-error");
    box.hidden = false;
    box.textContent = "Could not load reports: " + err.message;
  }
});
