// A ZIP of photos as one batch: its form, the upload, its progress until it has ended, then
// its report CSV and results ZIP (README, "Batches").

import { uploadFile } from "./api.js";

const ENDED = ["COMPLETED", "REJECTED", "FAILED"];
// One record read per poll; a batch runs for seconds to many minutes.
const POLL_MS = 2000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const isZip = (file) =>
  ["application/zip", "application/x-zip-compressed"].includes(file.type) ||
  file.name.toLowerCase().endsWith(".zip");

function progressLine(batch) {
  const counts = Object.entries(batch.counts ?? {})
    .sort()
    .map(([status, count]) => `${count} ${status.toLowerCase()}`)
    .join(", ");
  const done = batch.total == null ? "" : `${batch.done} of ${batch.total} photos done`;
  const detail = [done, counts && `(${counts})`].filter(Boolean).join(" ");
  switch (batch.status) {
    case "WAITING":
      return "Waiting for the ZIP to arrive";
    case "RUNNING":
      return `Running: ${detail || "reading the ZIP"}`;
    case "COMPLETED":
      return `Completed: ${detail}`;
    case "REJECTED":
      return `Rejected: ${batch.reason ?? "the ZIP could not be read"}`;
    default:
      return `Failed: ${batch.reason ?? "the batch broke down"}`;
  }
}

export async function analyseZip(api, zip, card) {
  card.showStatus("Asking for an upload form…");
  const { batch, upload } = await api.createBatch(zip);
  card.showUploadProgress(0);
  await uploadFile(upload, zip, (fraction) => card.showUploadProgress(fraction));
  let state = batch;
  while (!ENDED.includes(state.status)) {
    card.showStatus(progressLine(state), state.status);
    if (state.total) card.showProgress(state.done / state.total, "Progress");
    await sleep(POLL_MS);
    state = await api.batch(batch.batch_id);
  }
  card.showProgress(1, "Progress");
  card.showStatus(progressLine(state), state.status);
  if (state.status === "COMPLETED") {
    const { report, results } = await api.batchReport(batch.batch_id);
    card.showDownloads([
      ["Report CSV", report],
      ["Results ZIP", results],
    ]);
  }
  card.allowRemoval();
}
