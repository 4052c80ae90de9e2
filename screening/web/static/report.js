"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const me = LD.requireSignIn();
  if (!me) return;
  const id = LD.param("id");
  if (me.role !== "court") LD.$("#back").href = `/app/assessment?id=${encodeURIComponent(id)}`;
  await LD.showReport(id, LD.$("#report-frame-wrap"), LD.$("#download-pdf"), LD.param("record"));
});
