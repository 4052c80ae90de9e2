/* The commissioners' dashboard inside the app: the server renders the figures and charts (inline SVG,
 * suppression applied); the app fetches them with the signed-in token and shows them sanitised. */
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  if (!LD.requireSignIn("commissioner")) return;
  const { $, el } = LD;
  const form = $("#period-form");
  const errorBox = $("#insights-error");

  function query() {
    const q = new URLSearchParams();
    if (form.from.value) q.set("from", form.from.value);
    if (form.to.value) q.set("to", form.to.value);
    return q.toString();
  }

  function fail(err, what) {
    errorBox.hidden = false;
    errorBox.textContent = err instanceof LD.OfflineError ? `${err.message}: ${what.toLowerCase()} cannot be loaded now.` : `${what} could not be loaded: ${err.message}`;
  }

  async function load() {
    errorBox.hidden = true;
    try {
      const q = query();
      const html = await (await LD.api("GET", "/insights" + (q ? "?" + q : ""), { raw: true, headers: { Accept: "text/html" } })).text();
      $("#dashboard").replaceChildren(LD.reportPreview(html, "Commissioners' figures", "dashboard-view"));
    } catch (err) {
      $("#dashboard").replaceChildren();
      fail(err, "The figures");
    }
  }

  LD.handleSubmit(form, (ev) => { ev.preventDefault(); load(); });
  $("#board-pdf").addEventListener("click", async () => {
    // The board report covers one month: the chosen last month, or the last completed one.
    const now = new Date();
    const last = new Date(now.getFullYear(), now.getMonth() - 1, 1);
    const month = form.to.value || `${last.getFullYear()}-${String(last.getMonth() + 1).padStart(2, "0")}`;
    try {
      const blob = await (await LD.api("GET", `/api/v1/insights/report?month=${month}&format=pdf`, { raw: true, headers: { Accept: "application/pdf" } })).blob();
      const a = el("a", { href: URL.createObjectURL(blob), download: `board-report-${month}.pdf` });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (err) {
      fail(err, "The board report");
    }
  });
  await load();
});
