/* The assessment: urgent flags first, the model's result per domain with the answers behind it,
 * instrument scores, diversion routes with the nurse's decisions, finalising, and the court report. */
"use strict";

const DOMAINS = {
  mental_health: "Mental health",
  learning_disability: "Learning disability",
  substance_misuse: "Drugs and alcohol",
};
const URGENCY = { immediate: "Immediate", urgent: "Urgent", routine: "Routine" };
// The routes API's fixed reason codes (counted later, so overrides can be reviewed for equity).
const REASONS = [["clinical_judgement", "Clinical judgement"], ["person_declined", "The person declined"],
  ["already_supported", "Already supported by this service"], ["not_eligible", "Not eligible"],
  ["service_unavailable", "Service not available"], ["other", "Other (say why in the note)"]];

document.addEventListener("DOMContentLoaded", async () => {
  if (!LD.requireSignIn("nurse")) return;
  const { el, $ } = LD;
  const id = LD.param("id");
  const enc = encodeURIComponent(id);
  $("#to-questions").href = `/app/questions?id=${enc}`;

  let screen;
  try {
    screen = (await LD.loadScreen(id)).screen;
  } catch (err) {
    const box = $("#load-error");
    box.hidden = false;
    box.textContent = "Could not load the screen: " + err.message;
    return;
  }
  LD.caption(screen);
  const final = screen.status === "final";
  $("#to-questions").hidden = final || screen.status === "declined";
  $("#status-line").textContent = final
    ? `Final: finalised by ${screen.finalised_by} on ${LD.fmtDateTime(screen.finalised_at)}.`
    : screen.status === "declined" ? "Declined: the person declined screening." : `Draft: ${screen.progress.answered} of ${screen.progress.expected} questions answered.`;

  // ---- urgent flags at the top: icon and words, not colour alone ----
  const flags = screen.scores.flatMap((s) => s.flags.map((f) => Object.assign({ instrument: s.instrument_id }, f)));
  const urgent = flags.filter((f) => f.urgent);
  if (urgent.length) {
    $("#urgent").hidden = false;
    $("#urgent-list").replaceChildren(...urgent.map((f) => el("li", { text: f.text })));
  }

  // ---- instrument scores ----
  const titles = {};
  try { for (const i of await LD.loadInstruments()) titles[i.id] = i.title; } catch (e) { /* ids shown instead */ }
  if (screen.scores.length) {
    $("#scores").replaceChildren(el("table", { class: "table" },
      el("caption", { class: "visually-hidden", text: "Scores of fully answered instruments" }),
      el("thead", {}, el("tr", {}, ["Instrument", "Total", "Band", "Referral threshold"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, screen.scores.map((s) => el("tr", {},
        el("th", { scope: "row", text: titles[s.instrument_id] || s.instrument_id }),
        el("td", { text: `${s.total} of ${s.max_total}` }),
        el("td", { text: s.band_label || "–" }),
        el("td", {}, s.positive ? el("strong", { class: "tag tag--positive", text: "Met" }) : el("span", { class: "tag", text: "Not met" })))))));
  } else {
    $("#scores").replaceChildren(el("p", { text: "No instrument is fully answered yet." }));
  }
  const other = flags.filter((f) => !f.urgent);
  if (other.length) {
    $("#other-flags").replaceChildren(el("h3", { text: "Answers that need attention" }),
      el("ul", { class: "flag-list" }, other.map((f) => el("li", { text: f.text }))));
  }

  let routesFromAssessment = null;
  // ---- the model: each domain with a small bar chart of the answers that moved it ----
  try {
    const a = await LD.api("GET", `/api/v1/screens/${enc}/assessment`);
    if (!a || !a.domains) throw new LD.ApiError(404, null);
    // The assessment carries the routes, read with it: the first render needs no second request.
    routesFromAssessment = a.recommendations || null;
    $("#model").replaceChildren(
      ...Object.entries(a.domains).map(([domain, d]) => domainCard(domain, d)),
      el("p", { class: "hint", text: `Model version ${a.model.version}. Decision support only: your judgement decides.` }));
  } catch (err) {
    $("#model").replaceChildren(el("p", { class: "notice", text: err.status === 404
      ? "The model's result for each domain will appear here once the model is installed on this service. Instrument scores and flags are below."
      : err instanceof LD.OfflineError ? `${err.message}: the model's result cannot be loaded now.` : "The model's result could not be loaded: " + err.message }));
  }

  // Set through the CSSOM: the service's CSP allows no inline style attributes.
  function barFill(up, w) {
    const fill = el("span", { class: "bar__fill" });
    fill.style.left = up ? "50%" : `${50 - w}%`;
    fill.style.width = `${w}%`;
    return fill;
  }

  function domainCard(domain, d) {
    const top = d.contributions.slice(0, 8);
    const max = Math.max(1e-9, ...top.map((c) => Math.abs(c.contribution)));
    const pct = Math.round(d.probability * 100);
    return el("article", { class: "domain" },
      el("h3", { text: DOMAINS[domain] || domain }),
      el("p", { class: "domain__result" },
        d.answered === 0
          ? el("span", { class: "tag", text: "No answers in this domain yet" })
          : d.needs_assessment
            ? el("strong", { class: "tag tag--positive" }, el("span", { "aria-hidden": "true", text: "▲ " }), "Full assessment suggested")
            : el("span", { class: "tag", text: "Full assessment not suggested" }),
        d.answered === 0 ? "" : ` ${pct}% (threshold ${Math.round(d.threshold * 100)}%)`),
      top.length ? el("ul", { class: "bars", "aria-label": `Answers that raised or lowered the ${DOMAINS[domain] || domain} result` },
        top.map((c) => {
          const up = c.contribution > 0;
          const w = Math.max(2, Math.round((50 * Math.abs(c.contribution)) / max));
          return el("li", { class: "bar " + (up ? "bar--up" : "bar--down") },
            el("span", { class: "bar__label" }, c.label || c.feature, c.value ? el("span", { class: "bar__value", text: ": " + c.value }) : null),
            el("span", { class: "bar__track", "aria-hidden": "true" }, barFill(up, w)),
            el("span", { class: "bar__dir", text: up ? "▲ raises" : "▼ lowers" }));
        })) : el("p", { text: "No answers moved this result." }),
      d.missing && d.missing.length ? el("p", { class: "hint", text: `Not yet answered: ${d.missing.length} ${d.missing.length === 1 ? "item" : "items"}.` }) : null);
  }

  // ---- needs: the nurse confirms or overrides each domain; only confirmed needs reach a court ----
  async function loadNeeds() {
    try {
      const d = await LD.api("GET", `/api/v1/screens/${enc}/decisions`);
      $("#needs").replaceChildren(...d.needs.map(needCard));
    } catch (err) {
      $("#needs").replaceChildren(el("p", { class: "notice", text: err instanceof LD.OfflineError
        ? `${err.message}: needs cannot be loaded now.` : "Needs could not be loaded: " + err.message }));
    }
  }

  function needCard(n) {
    const key = "need-" + n.domain;
    const proposedText = n.proposed ? "Proposed: need present" : "Proposed: no need found";
    const decidedText = n.need === null ? null : (n.need ? "✓ You confirmed: need present" : "✗ You decided: no need");
    const form = el("form", { class: "route__form", novalidate: true });
    const reasons = el("select", { class: "select", id: key + "-reason", name: "reason_code" },
      el("option", { value: "", text: "Choose a reason" }), REASONS.map(([v, t]) => el("option", { value: v, text: t })));
    form.append(
      el("fieldset", { class: "fieldset" },
        el("legend", { class: "label", text: `Is there a ${n.title.toLowerCase()} need?` }),
        el("div", { class: "radios radios--inline" },
          [["yes", "Need present"], ["no", "No need"]].map(([v, t]) => el("div", { class: "radio" },
            el("input", { type: "radio", name: "need", id: `${key}-${v}`, value: v }),
            el("label", { for: `${key}-${v}`, text: t }))))),
      el("div", { class: "form-group" }, el("label", { class: "label", for: key + "-reason", text: "Reason (needed to change the proposal)" }), reasons),
      el("div", { class: "form-group" }, el("label", { class: "label", for: key + "-note", text: "Note (needed to change the proposal)" }),
        el("textarea", { class: "textarea", id: key + "-note", name: "note", rows: "2", maxlength: "500" })),
      el("button", { type: "submit", class: "button button--secondary" }, "Save judgement", el("span", { class: "visually-hidden", text: " on " + n.title })));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const choice = (form.querySelector("input[name=need]:checked") || {}).value;
      const errors = [];
      if (!choice) errors.push({ field: `${key}-yes`, message: `${n.title}: choose need present or no need` });
      const overriding = choice && (choice === "yes") !== n.proposed;
      if (overriding && !reasons.value) errors.push({ field: key + "-reason", message: `${n.title}: choose a reason for changing the proposal` });
      if (overriding && !form.note.value.trim()) errors.push({ field: key + "-note", message: `${n.title}: say why in the note` });
      if (errors.length) return LD.showErrors(errors);
      try {
        await LD.api("PUT", `/api/v1/screens/${enc}/needs/${encodeURIComponent(n.domain)}`,
          { body: { need: choice === "yes", reason_code: reasons.value || null, note: form.note.value.trim() || null } });
        LD.showErrors([]);
        await loadNeeds();
      } catch (err) {
        LD.showErrors([{ field: key + "-yes", message: `${n.title}: not saved: ${err.message}` }]);
      }
    });
    return el("article", { class: "route", "aria-labelledby": key + "-title" },
      el("h3", { id: key + "-title", text: n.title }),
      el("p", {}, el("strong", { text: proposedText })),
      n.reasons && n.reasons.length ? el("ul", {}, n.reasons.map((r) => el("li", { text: r.text }))) : null,
      decidedText ? el("p", { class: "route__decision" }, el("strong", { text: decidedText }),
        n.overridden && n.reason_code ? ` (changed: ${n.reason_code})` : "") : null,
      final ? null : form);
  }
  await loadNeeds();

  // ---- diversion routes ----
  async function loadRoutes(known) {
    try {
      const recs = known || await LD.api("GET", `/api/v1/screens/${enc}/recommendations`);
      if (!recs.length) return $("#routes").replaceChildren(el("p", { text: "No route is suggested by the answers so far." }));
      $("#routes").replaceChildren(...recs.map(routeCard));
    } catch (err) {
      $("#routes").replaceChildren(el("p", { class: "notice", text: err.status === 404
        ? "Suggested diversion routes, with your decision on each, will appear here once routes are installed on this service."
        : err instanceof LD.OfflineError ? `${err.message}: routes cannot be loaded now.` : "Routes could not be loaded: " + err.message }));
    }
  }

  function serviceText(s) {
    if (!s) return null;
    if (typeof s === "string") return s;
    return [s.name, s.phone || s.contact, s.hours].filter(Boolean).join(" · ");
  }

  function routeCard(r) {
    const key = "route-" + r.route;
    const decided = r.decision && (r.decision.decision || r.decision);
    const form = el("form", { class: "route__form", novalidate: true });
    const reasons = el("select", { class: "select", id: key + "-reason", name: "reason_code" },
      el("option", { value: "", text: "Choose a reason" }), REASONS.map(([v, t]) => el("option", { value: v, text: t })));
    form.append(
      el("fieldset", { class: "fieldset" },
        el("legend", { class: "label", text: "Your decision" }),
        el("div", { class: "radios radios--inline" },
          ["accept", "decline"].map((d) => el("div", { class: "radio" },
            el("input", { type: "radio", name: "decision", id: `${key}-${d}`, value: d }),
            el("label", { for: `${key}-${d}`, text: d === "accept" ? "Accept" : "Decline" }))))),
      el("div", { class: "form-group" }, el("label", { class: "label", for: key + "-reason", text: "Reason (needed to decline)" }), reasons),
      el("div", { class: "form-group" }, el("label", { class: "label", for: key + "-note", text: "Note (needed to decline)" }),
        el("textarea", { class: "textarea", id: key + "-note", name: "note", rows: "2", maxlength: "500" })),
      el("button", { type: "submit", class: "button button--secondary" }, "Save decision", el("span", { class: "visually-hidden", text: " on " + r.title })));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const decision = (form.querySelector("input[name=decision]:checked") || {}).value;
      const errors = [];
      if (!decision) errors.push({ field: `${key}-accept`, message: `${r.title}: choose accept or decline` });
      // Declining a proposed route needs a reason code and a note (the routes API enforces it too).
      if (decision === "decline" && !reasons.value) errors.push({ field: key + "-reason", message: `${r.title}: choose a reason for declining` });
      if (decision === "decline" && !form.note.value.trim()) errors.push({ field: key + "-note", message: `${r.title}: say why in the note` });
      if (errors.length) return LD.showErrors(errors);
      try {
        await LD.api("POST", `/api/v1/screens/${enc}/recommendations/${encodeURIComponent(r.route)}/decision`,
          { body: { decision, reason_code: reasons.value || null, note: form.note.value.trim() || null } });
        LD.showErrors([]);
        await loadRoutes();
        const again = document.getElementById(key);
        if (again) again.focus();
      } catch (err) {
        const fe = (err.problem && err.problem.errors) || [];
        LD.showErrors(fe.length ? fe.map((e) => ({ field: e.field === "note" ? key + "-note" : key + "-reason", message: `${r.title}: ${e.field.replace("_", " ")} ${e.message}` }))
          : [{ field: null, message: `${r.title}: ${err.message}` }]);
      }
    });
    return el("article", { class: "route route--" + r.urgency, id: key, tabindex: "-1" },
      el("h3", {}, el("span", { class: "tag tag--" + r.urgency, text: URGENCY[r.urgency] || r.urgency }), " ", r.title),
      el("ul", { class: "route__reasons" }, (r.reasons || []).map((x) => el("li", { text: x.text }))),
      serviceText(r.service) ? el("p", { class: "hint", text: "Service: " + serviceText(r.service) }) : null,
      decided ? el("p", { class: "route__decision" }, el("strong", { text: decided === "accept" ? "✓ Accepted" : "✗ Declined" }),
        r.decision.reason_code ? ` (${r.decision.reason_code})` : "") : null,
      final ? null : form);
  }
  await loadRoutes(routesFromAssessment);

  // ---- finalise ----
  if (final || screen.status === "declined") {
    $("#finalise-block").hidden = true;
  } else {
    $("#finalise").addEventListener("click", async () => {
      const waiting = await LD.pending(id);
      if (waiting.length) return LD.showErrors([{ field: null, message: `${waiting.length} answers are not saved yet: wait until the banner says Saved.` }]);
      try {
        await LD.api("POST", `/api/v1/screens/${enc}/finalise`);
        location.reload();
      } catch (err) {
        LD.showErrors([{ field: "finalise", message: "Not finalised: " + err.message }]);
      }
    });
  }

  // ---- the court report ----
  if (!final) {
    $("#report").replaceChildren(el("p", { text: "The court report can be previewed once the screen is finalised." }));
  } else if (!screen.consent || !screen.consent.share_with_court) {
    $("#report").replaceChildren(el("p", { text: "The person did not agree to share information with the court: there is no court report." }));
  } else {
    const download = el("button", { type: "button", class: "button", id: "download-pdf", hidden: true, text: "Download PDF" });
    const frame = el("div", { id: "report-frame-wrap" });
    $("#report").replaceChildren(el("p", {}, download), frame);
    await LD.showReport(id, frame, download, screen.custody_record);
  }
});
