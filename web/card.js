// A card per dropped file: its status while it is uploaded and analysed, then its result,
// downloads and a delete button. A ZIP's card (batch.js) shows the batch's progress instead.

import { everythingZip } from "./everything-zip.js";
import { renderCompleted } from "./result.js";

// What each stage does, for the status line while a job is PROCESSING.
const STAGE_WORDS = {
  ingest: "checking the photo",
  pose: "finding the person",
  segment: "cutting the person out",
  colors: "reading the clothing colours",
  face: "estimating age and sex",
  overlay: "drawing the overlay",
  finalize: "saving the result",
};

const DOWNLOADS = [
  ["cutout", "Cutout PNG"],
  ["overlay", "Overlay"],
  ["result", "result.json"],
];

function statusLine(summary) {
  switch (summary.status) {
    case "QUEUED":
      return "Queued: waiting for the analysis to start";
    case "PROCESSING":
      return summary.stage
        ? `Processing: ${STAGE_WORDS[summary.stage] ?? summary.stage} (${summary.stage})`
        : "Processing";
    case "COMPLETED":
      return "Completed";
    case "REJECTED":
      return `Rejected: ${summary.reason ?? "the photo could not be analysed"}`;
    case "FAILED":
      return "Failed: the analysis broke down";
    default:
      return summary.status;
  }
}

export class Card {
  constructor(template, file, onDelete) {
    this.element = template.content.firstElementChild.cloneNode(true);
    this.filename = file.name;
    this.jobId = null;
    this.part = (selector) => this.element.querySelector(selector);
    this.part(".card-title").textContent = file.name;
    this.part(".delete").addEventListener("click", () => onDelete(this));
  }

  showStatus(text, status = "") {
    const line = this.part(".status");
    line.textContent = text;
    line.dataset.status = status;
  }

  showProgress(fraction, label) {
    const bar = this.part(".progress");
    bar.hidden = false;
    bar.value = fraction;
    bar.setAttribute("aria-label", `${label} of ${this.filename}`);
  }

  showUploadProgress(fraction) {
    this.showProgress(fraction, "Upload");
    this.showStatus(`Uploading: ${Math.round(fraction * 100)}%`);
  }

  showJob(summary) {
    this.part(".progress").hidden = true;
    this.showStatus(statusLine(summary), summary.status);
  }

  showError(message) {
    const error = this.part(".error");
    error.textContent = message;
    error.hidden = false;
    this.part(".progress").hidden = true;
    if (!this.part(".status").dataset.status) this.showStatus("Not analysed", "ERROR");
    this.allowRemoval();
  }

  showResult(result) {
    this.showJob(result);
    const view = this.part(".result");
    view.replaceChildren();
    if (result.status === "COMPLETED") {
      view.append(renderCompleted(result));
    } else if (result.status === "REJECTED") {
      view.append(paragraph(`Silhouette did not analyse this photo: ${result.reason}.`));
      if (result.downloads?.image) view.append(thumbnail(result.downloads.image.url, this.filename));
    } else {
      view.append(paragraph("The analysis failed. Delete the photo and try it again."));
      if (result.error) view.append(details("What went wrong", result.error));
    }
    const downloads = result.downloads ?? {};
    const offered = DOWNLOADS.filter(([artifact]) => downloads[artifact]);
    this.showDownloads(offered.map(([artifact, label]) => [label, downloads[artifact]]));
    if (Object.keys(downloads).length) this.offerEverything(result);
    this.allowRemoval();
  }

  // A card with a job deletes it; any other (a ZIP's, a file that was not sent) is only removed.
  allowRemoval() {
    const button = this.part(".delete");
    button.textContent = this.erases ? "Delete" : "Remove";
    button.setAttribute("aria-label", `${button.textContent} ${this.filename}`);
    button.hidden = false;
  }

  get erases() {
    return this.jobId !== null;
  }

  // `files` are [label, {url, filename}] pairs: presigned links that download as `filename`.
  showDownloads(files) {
    const links = files.map(([label, { url, filename }]) => {
      const link = document.createElement("a");
      link.className = "button";
      link.href = url;
      link.download = filename;
      link.textContent = label;
      link.setAttribute("aria-label", `Download ${label} of ${this.filename}`);
      return link;
    });
    this.part(".downloads").replaceChildren(...links);
  }

  // A button rather than a link: the archive is only built (every artifact fetched) on demand.
  offerEverything(result) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = "Everything as a ZIP";
    button.setAttribute("aria-label", `Download everything of ${this.filename} as a ZIP`);
    button.addEventListener("click", () => this.saveEverything(result, button));
    this.part(".downloads").append(button);
  }

  async saveEverything(result, button) {
    const line = this.part(".zip-progress");
    const say = (text, isError = false) => {
      line.textContent = text;
      line.classList.toggle("error", isError);
      line.hidden = false;
    };
    button.disabled = true;
    try {
      const progress = (done, total) =>
        say(done < total ? `Fetching file ${done + 1} of ${total}…` : "Packing the ZIP…");
      const { filename, blob } = await everythingZip(result, progress);
      saveBlob(blob, filename);
      say(`Saved ${filename} (${megabytes(blob.size)} MB).`);
    } catch (error) {
      say(`No ZIP: ${error.message}`, true);
    } finally {
      button.disabled = false;
    }
  }
}

const megabytes = (bytes) => (bytes / 2 ** 20).toFixed(1);

// Offers `blob` as a download named `filename`, as a link with `download` would.
function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.click();
  // The download has its own copy once started; the URL is only kept while it begins.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function paragraph(text) {
  const element = document.createElement("p");
  element.className = "outcome";
  element.textContent = text;
  return element;
}

function thumbnail(url, filename) {
  const image = document.createElement("img");
  image.className = "thumbnail";
  image.src = url;
  image.alt = filename;
  return image;
}

function details(summaryText, text) {
  const element = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = summaryText;
  const code = document.createElement("code");
  code.textContent = text;
  element.append(summary, code);
  return element;
}
