// The Silhouette HTTP API as the page uses it, and the upload through a presigned POST.
// Every failure becomes an ApiError whose message a person can act on.

const RETRIES_WHEN_BUSY = 3; // 429 and 503 say "try again shortly"

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status; // HTTP status, or 0 when the server could not be reached
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The wait a 429 or 503 asks for (Retry-After, in seconds), else one growing with each try.
function retryDelayMs(response, attempt) {
  const seconds = Number(response?.headers?.get("Retry-After"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 500 * 2 ** attempt;
}

function readableError(status, body) {
  const detail = body?.message ? ` (${body.message})` : "";
  switch (status) {
    case 403:
      return "The API key was refused. Check the key and enter it again.";
    case 404:
      return "This job no longer exists.";
    case 409:
      return `Not possible yet: the job is still running${detail}.`;
    case 429:
      return "Too many requests at once: wait a moment and try again.";
    case 503:
      return "The service is busy: try again in a moment.";
    default:
      return `The API answered ${status}${detail}.`;
  }
}

export class Api {
  // `base` is where the API is: "" when it shares the page's origin (silhouette serve).
  constructor(key, base = "") {
    this.key = key;
    this.base = base;
  }

  async request(method, path, body) {
    for (let attempt = 0; ; attempt += 1) {
      let response;
      try {
        response = await fetch(this.base + path, {
          method,
          headers: {
            "x-api-key": this.key,
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch {
        throw new ApiError("The API could not be reached: is `silhouette serve` running?", 0);
      }
      const busy = response.status === 429 || response.status === 503;
      if (busy && attempt < RETRIES_WHEN_BUSY) {
        await sleep(retryDelayMs(response, attempt));
        continue;
      }
      if (response.status === 204) return null;
      const answer = await response.json().catch(() => null);
      if (!response.ok) throw new ApiError(readableError(response.status, answer), response.status);
      return answer;
    }
  }

  checkKey() {
    return this.request("GET", "/jobs?limit=1");
  }

  async createUpload(file) {
    try {
      return await this.request("POST", "/uploads", {
        content_type: file.type,
        filename: file.name,
        size: file.size,
      });
    } catch (error) {
      if (error.status !== 413) throw error;
      // Rounded up: a photo just over the limit must not read as exactly at it.
      const megabytes = (Math.ceil((file.size / 2 ** 20) * 10) / 10).toFixed(1);
      throw new ApiError(`This photo is too large (${megabytes} MB): over the upload limit.`, 413);
    }
  }

  createBatch(zip) {
    return this.request("POST", "/batches", { source: "zip", size: zip.size });
  }

  batch(batchId) {
    return this.request("GET", `/batches/${encodeURIComponent(batchId)}`);
  }

  batchReport(batchId) {
    return this.request("GET", `/batches/${encodeURIComponent(batchId)}/report`);
  }

  job(jobId) {
    return this.request("GET", `/jobs/${encodeURIComponent(jobId)}`);
  }

  result(jobId) {
    return this.request("GET", `/jobs/${encodeURIComponent(jobId)}/result`);
  }

  deleteJob(jobId) {
    return this.request("DELETE", `/jobs/${encodeURIComponent(jobId)}`);
  }
}

// S3 explains a refusal in XML: <Error><Code>EntityTooLarge</Code><Message>...</Message>.
function storageRefusal(xhr) {
  const xml = new DOMParser().parseFromString(xhr.responseText || "", "application/xml");
  const message = xml.querySelector("Error > Message")?.textContent;
  return `Storage refused the upload (${xhr.status}${message ? `: ${message}` : ""}).`;
}

// Sends the file through the presigned POST `upload` ({url, fields}); XHR, not fetch, because
// only XHR reports upload progress. `onProgress(fraction)` is called as bytes go out.
export function uploadFile(upload, file, onProgress) {
  const form = new FormData();
  for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
  form.append("file", file); // last: S3 ignores every field after the file
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", upload.url);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else reject(new ApiError(storageRefusal(xhr), xhr.status));
    });
    xhr.addEventListener("error", () =>
      reject(new ApiError("The upload could not reach storage.", 0)),
    );
    xhr.send(form);
  });
}
