// One photo's way through Silhouette: an upload form, the upload, polling until the job has
// finished, then its result. The card shows each step.

import { ApiError, uploadFile } from "./api.js";

export const PHOTO_TYPES = ["image/jpeg", "image/png", "image/webp"];
const FINISHED = ["COMPLETED", "REJECTED", "FAILED"];
// A status read is cheap, but a page with many photos shares one key's 10 requests a second:
// poll soon after the upload, then less and less often.
const FIRST_POLL_MS = 500;
const LONGEST_POLL_MS = 4000;
const POLL_GROWTH = 1.5;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function analysePhoto(api, file, card) {
  if (!PHOTO_TYPES.includes(file.type)) {
    throw new ApiError(
      "Not a JPEG, PNG or WebP photo, nor a ZIP of them: Silhouette cannot read this file.",
      415,
    );
  }
  card.showStatus("Asking for an upload form…");
  const { job, upload } = await api.createUpload(file);
  card.jobId = job.job_id;
  card.showUploadProgress(0);
  await uploadFile(upload, file, (fraction) => card.showUploadProgress(fraction));
  card.showJob(job);
  await pollUntilFinished(api, job.job_id, (summary) => card.showJob(summary));
  card.showResult(await api.result(job.job_id));
}

async function pollUntilFinished(api, jobId, onSummary) {
  for (let delay = FIRST_POLL_MS; ; delay = Math.min(delay * POLL_GROWTH, LONGEST_POLL_MS)) {
    await sleep(delay);
    const summary = await api.job(jobId);
    onSummary(summary);
    if (FINISHED.includes(summary.status)) return summary;
  }
}
