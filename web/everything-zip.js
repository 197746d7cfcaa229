// "Everything as a ZIP": every artifact of a job fetched through its presigned link and packed
// in the browser, laid out as `silhouette analyze --out` saves a photo: <stem>/result.json and
// <stem>/<artifact>.<ext>.

import { storedZip } from "./zip.js";

const RESULT_ARTIFACT = "result";

// A link's filename is "<stem>-<artifact><ext>" (service/jobs.py, downloads).
function splitFilename(artifact, filename) {
  const at = filename.lastIndexOf(`-${artifact}`);
  return { stem: filename.slice(0, at), extension: filename.slice(at + artifact.length + 1) };
}

// The stem every download of `result` is named after, for the archive's name.
export function downloadStem(result) {
  const [artifact, link] = Object.entries(result.downloads ?? {})[0] ?? [];
  return artifact ? splitFilename(artifact, link.filename).stem : result.job_id.slice(0, 8);
}

async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch {
    throw new Error(`The ${what} could not be fetched from storage.`);
  }
  if (!response.ok) {
    const expired = response.status === 403 ? ": the link may have expired, reload the page" : "";
    throw new Error(`Storage refused the ${what} (${response.status}${expired}).`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

// Fetches every artifact one after the other (a phone's connection is shared, and the progress
// reads naturally), reporting `onProgress(done, total)`; answers {filename, blob}.
export async function everythingZip(result, onProgress) {
  const stem = downloadStem(result);
  const links = Object.entries(result.downloads ?? {});
  const files = [];
  for (const [index, [artifact, link]] of links.entries()) {
    onProgress(index, links.length);
    const { extension } = splitFilename(artifact, link.filename);
    const name = artifact === RESULT_ARTIFACT ? "result.json" : `${artifact}${extension}`;
    files.push({ name: `${stem}/${name}`, bytes: await fetchBytes(link.url, name) });
  }
  // A job without a stored result.json (one that failed early) still gets the record it has.
  if (!result.downloads?.[RESULT_ARTIFACT]) {
    const { downloads, ...record } = result;
    const text = `${JSON.stringify(record, null, 2)}\n`;
    files.push({ name: `${stem}/result.json`, bytes: new TextEncoder().encode(text) });
  }
  onProgress(links.length, links.length);
  return { filename: `${stem}-silhouette.zip`, blob: storedZip(files) };
}
