/* The questionnaire: one question at a time, sections in any order, skip logic, answers saved as given. */
"use strict";

const SECTIONS = [
  ["mental_health", "Mental health"],
  ["risk", "Self-harm and suicide risk"],
  ["learning_disability", "Learning disability and communication"],
  ["alcohol", "Alcohol"],
  ["drugs", "Drugs and withdrawal"],
  ["social", "Social needs"],
  ["physical", "Physical health"],
];

// Within a section, the order a practitioner asks them in: the broad questionnaires before the screens
// that follow up on them.
const INSTRUMENT_ORDER = ["phq9", "gad7", "bjmhs", "risk", "ldc", "audit", "dast10", "withdrawal", "social", "physical"];

// The instruments' skip-logic rules, evaluated as the server's scoring engine does
// (screening/instruments/scoring.py `holds`): an unanswered item never satisfies a condition.
function points(item, value) {
  if (item.type === "boolean") return (value === true) !== item.reverse ? 1 : 0;
  return item.options[value].points;
}
function holds(rule, items, answers) {
  if ("item_true" in rule) return answers[rule.item_true] === true;
  if ("item_at_least" in rule) {
    const b = rule.item_at_least;
    return b.item in answers && points(items[b.item], answers[b.item]) >= b.value;
  }
  if ("sum_at_least" in rule) {
    const b = rule.sum_at_least;
    if (!b.items.every((i) => i in answers)) return false;
    return b.items.reduce((t, i) => t + points(items[i], answers[i]), 0) >= b.value;
  }
  if ("any" in rule) return rule.any.some((r) => holds(r, items, answers));
  if ("all" in rule) return rule.all.every((r) => holds(r, items, answers));
  return false; // total_at_least is for scoring, never for skip logic
}

document.addEventListener("DOMContentLoaded", async () => {
  if (!LD.requireSignIn("nurse")) return;
  const { el, $ } = LD;
  const id = LD.param("id");
  $("#to-assessment").href = `/app/assessment?id=${encodeURIComponent(id)}`;

  let screen, instruments;
  try {
    [{ screen }, instruments] = await Promise.all([LD.loadScreen(id), LD.loadInstruments()]);
  } catch (err) {
    const box = $("#load-error");
    box.hidden = false;
    box.textContent = err instanceof LD.OfflineError ? `${err.message}, and this screen is not stored on this device.` : "Could not load the screen: " + err.message;
    return;
  }
  LD.caption(screen);
  if (screen.status === "final") return location.replace(`/app/assessment?id=${encodeURIComponent(id)}`);
  if (screen.status === "declined" || !screen.consent) {
    const box = $("#load-error");
    box.hidden = false;
    box.replaceChildren(screen.status === "declined" ? "The person declined screening. " : "Record consent before asking questions. ",
      el("a", { href: `/app/consent?id=${encodeURIComponent(id)}`, text: "Go to consent" }));
    document.querySelector(".questions-layout").hidden = true;
    return;
  }

  // Items, by section, in the registry's order. AUDIT-C borrows AUDIT's items: ask them once.
  const items = {};
  const owner = {};
  const bySection = new Map(SECTIONS.map(([k]) => [k, []]));
  const rank = (i) => (INSTRUMENT_ORDER.includes(i.id) ? INSTRUMENT_ORDER.indexOf(i.id) : INSTRUMENT_ORDER.length);
  for (const inst of [...instruments].sort((a, b) => rank(a) - rank(b))) {
    if (!inst.owns_items) continue;
    if (!bySection.has(inst.section)) bySection.set(inst.section, []);
    for (const it of inst.items) {
      items[it.id] = it;
      owner[it.id] = inst;
      bySection.get(inst.section).push(it.id);
    }
  }
  const sectionLabel = new Map(SECTIONS);
  const sections = [...bySection.keys()].filter((k) => bySection.get(k).length);

  const answers = Object.assign({}, screen.answers);
  let revisions = Object.assign({}, screen.revisions);
  for (const p of await LD.pending(id)) answers[p.itemId] = p.value; // this device's unsent answers win on screen

  const enabled = (itemId) => !items[itemId].enable_when || holds(items[itemId].enable_when, items, answers);
  const asked = (section) => bySection.get(section).filter(enabled);

  const fromHash = new URLSearchParams(location.hash.slice(1));
  let section = sections.includes(fromHash.get("section")) ? fromHash.get("section") : sections[0];
  let index = 0;
  const firstUnanswered = (s) => Math.max(0, asked(s).findIndex((i) => !(i in answers)));
  index = fromHash.has("q") ? Math.max(0, asked(section).indexOf(fromHash.get("q"))) : firstUnanswered(section);

  function valueText(itemId, value) {
    if (value === null || value === undefined) return "No answer";
    const it = items[itemId];
    if (it.type === "boolean") return value ? "Yes" : "No";
    return (it.options[value] || {}).label || String(value);
  }

  function renderProgress() {
    let answered = 0, expected = 0;
    for (const s of sections) {
      const a = asked(s);
      expected += a.length;
      answered += a.filter((i) => i in answers).length;
    }
    $("#progress-text").textContent = `${answered} of ${expected} questions answered`;
    $("#progress-bar").style.width = expected ? `${Math.round((100 * answered) / expected)}%` : "0";
    const list = $("#section-list");
    list.replaceChildren();
    for (const s of sections) {
      const a = asked(s);
      const done = a.filter((i) => i in answers).length;
      const complete = done === a.length;
      list.append(el("li", {},
        el("button", {
          type: "button", class: "section-link" + (s === section ? " section-link--current" : ""),
          "aria-current": s === section ? "step" : null,
          onclick: () => { section = s; index = firstUnanswered(s); render(); $("#section-title").focus(); },
        },
        el("span", { class: "section-link__name", text: sectionLabel.get(s) || s }),
        el("span", { class: "section-link__count" + (complete ? " section-link__count--done" : "") },
          complete ? el("span", { "aria-hidden": "true", text: "✓ " }) : null,
          `${done} of ${a.length}`, complete ? el("span", { class: "visually-hidden", text: ", complete" }) : null))));
    }
  }

  function renderQuestion() {
    const list = asked(section);
    index = Math.min(index, Math.max(0, list.length - 1));
    const itemId = list[index];
    const it = items[itemId];
    const inst = owner[itemId];
    $("#section-title").textContent = sectionLabel.get(section) || section;
    $("#section-preamble").textContent = inst.preamble || "";
    const q = $("#question");
    const name = "answer-" + itemId;
    const opts = it.type === "boolean"
      ? [[true, "Yes"], [false, "No"]]
      : it.options.map((o, i) => [i, o.label]);
    const fs = el("fieldset", { class: "fieldset" },
      el("legend", { class: "question__prompt" },
        el("span", { class: "question__count", text: `Question ${index + 1} of ${list.length} · ${inst.title}` }),
        el("span", { class: "question__text", text: it.prompt })),
      inst.unit_note && it.id.startsWith("audit_") ? el("p", { class: "hint", text: inst.unit_note }) : null,
      el("div", { class: "radios radios--large" + (it.type === "boolean" ? " radios--inline" : "") },
        opts.map(([v, label], i) => el("div", { class: "radio" },
          el("input", {
            type: "radio", name, id: `${name}-${i}`, value: String(v),
            checked: answers[itemId] === v,
            onchange: () => answer(itemId, v),
          }),
          el("label", { for: `${name}-${i}`, text: label })))));
    q.replaceChildren(fs);
    q.dataset.item = itemId;
    $("#prev").disabled = index === 0 && sections.indexOf(section) === 0;
    const last = index === list.length - 1;
    const lastSection = sections.indexOf(section) === sections.length - 1;
    $("#next").textContent = last ? (lastSection ? "See assessment" : "Next section") : "Next question";
    const idx = $("#question-index");
    idx.replaceChildren(...list.map((iid, i) => el("li", {},
      el("button", { type: "button", class: "link-button", onclick: () => { index = i; render(); focusQuestion(); } },
        items[iid].prompt, " – ", el("span", { class: iid in answers ? "" : "muted", text: valueText(iid, answers[iid]) })))));
    history.replaceState(null, "", `#section=${section}&q=${itemId}`);
  }

  function focusQuestion() {
    const checked = document.querySelector("#question input:checked") || document.querySelector("#question input");
    if (checked) checked.focus();
  }

  function render() { renderProgress(); renderQuestion(); }

  async function answer(itemId, value) {
    answers[itemId] = value;
    // Skip logic may add or remove questions after this one: redraw, keeping focus on her choice.
    render();
    focusQuestion();
    LD.showBanner("saving", "Saving…");
    await LD.queueAnswer(id, itemId, value, revisions[itemId] || 0);
  }

  $("#next").addEventListener("click", () => {
    const list = asked(section);
    if (index < list.length - 1) index += 1;
    else {
      const si = sections.indexOf(section);
      if (si === sections.length - 1) return location.assign(`/app/assessment?id=${encodeURIComponent(id)}`);
      section = sections[si + 1];
      index = 0;
    }
    render();
    focusQuestion();
  });
  $("#prev").addEventListener("click", () => {
    if (index > 0) index -= 1;
    else {
      const si = sections.indexOf(section);
      if (si === 0) return;
      section = sections[si - 1];
      index = asked(section).length - 1;
    }
    render();
    focusQuestion();
  });

  async function renderConflicts() {
    const conflicts = (await LD.pending(id)).filter((p) => p.conflict);
    const box = $("#conflicts");
    const list = $("#conflict-list");
    list.replaceChildren(...conflicts.map((p) => el("li", { class: "conflict", "data-item": p.itemId },
      el("p", { class: "conflict__prompt", text: items[p.itemId] ? items[p.itemId].prompt : p.itemId }),
      el("dl", { class: "conflict__values" },
        el("dt", { text: "On this device" }), el("dd", { text: valueText(p.itemId, p.value) }),
        el("dt", { text: "Saved on the server" }), el("dd", { text: valueText(p.itemId, p.conflict.serverValue) })),
      el("div", { class: "conflict__actions" },
        el("button", { type: "button", class: "button", onclick: () => LD.resolveConflict(id, p.itemId, true) },
          "Keep this device's answer", el("span", { class: "visually-hidden", text: ": " + valueText(p.itemId, p.value) })),
        el("button", { type: "button", class: "button button--secondary", onclick: async () => {
          answers[p.itemId] = p.conflict.serverValue;
          if (answers[p.itemId] === null) delete answers[p.itemId];
          await LD.resolveConflict(id, p.itemId, false);
          render();
        } }, "Keep the saved answer", el("span", { class: "visually-hidden", text: ": " + valueText(p.itemId, p.conflict.serverValue) }))))));
    const wasHidden = box.hidden;
    box.hidden = conflicts.length === 0;
    if (wasHidden && !box.hidden) box.focus();
  }

  LD.onSync(async (ev) => {
    if (ev.screenId !== id) return;
    if (ev.type === "saved") {
      revisions = Object.assign({}, ev.screen.revisions);
      const pend = new Set((await LD.pending(id)).map((p) => p.itemId));
      for (const [k, v] of Object.entries(ev.screen.answers)) if (!pend.has(k)) answers[k] = v;
      renderProgress();
    }
    if (ev.type === "conflict" || ev.type === "resolved" || ev.type === "saved") renderConflicts();
    if (ev.type === "rejected") {
      const box = $("#load-error");
      box.hidden = false;
      box.textContent = "Answers were not saved: " + ev.message;
    }
  });

  render();
  renderConflicts();
});
