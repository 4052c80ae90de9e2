"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const me = LD.requireSignIn("nurse");
  if (!me) return;
  const form = LD.$("#new-form");
  const select = LD.$("#custody_suite");
  for (const s of me.custody_suites) select.append(LD.el("option", { value: s, text: s }));
  LD.$("#suite-group").hidden = me.custody_suites.length < 2;
  // One key per form, generated on the device: a retried create (lost response, double tap) returns the
  // same screen instead of opening a duplicate.
  const key = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
  const fieldNames = { custody_record: "custody record number", date_of_birth: "date of birth", sex: "sex", ethnicity: "ethnicity", custody_suite: "custody suite" };
  LD.handleSubmit(form, async (ev) => {
    ev.preventDefault();
    const body = {
      custody_record: form.custody_record.value.trim(),
      date_of_birth: form.date_of_birth.value,
      sex: (form.querySelector("input[name=sex]:checked") || {}).value || "unknown",
      custody_suite: select.value || undefined,
    };
    if (form.ethnicity.value.trim()) body.ethnicity = form.ethnicity.value.trim();
    const errors = [];
    if (!body.custody_record) errors.push({ field: "custody_record", message: "Enter the custody record number" });
    if (!body.date_of_birth) errors.push({ field: "date_of_birth", message: "Enter the date of birth" });
    else if (body.date_of_birth > new Date().toISOString().slice(0, 10)) errors.push({ field: "date_of_birth", message: "Date of birth must be in the past" });
    if (errors.length) return LD.showErrors(errors);
    try {
      const s = await LD.api("POST", "/api/v1/screens", { body, headers: { "Idempotency-Key": key } });
      await LD.rememberScreen(s);
      location.assign(`/app/consent?id=${encodeURIComponent(s.id)}`);
    } catch (err) {
      if (err instanceof LD.OfflineError) return LD.showErrors([{ field: null, message: `${err.message}: the screen was not opened. ${err.again} It will not be opened twice.` }]);
      const fe = (err.problem && err.problem.errors) || [];
      if (fe.length) return LD.showErrors(fe.map((e) => ({ field: e.field in fieldNames ? e.field : null, message: `${fieldNames[e.field] ? fieldNames[e.field][0].toUpperCase() + fieldNames[e.field].slice(1) : e.field}: ${e.message}` })));
      LD.showErrors([{ field: null, message: err.message }]);
    }
  });
});
