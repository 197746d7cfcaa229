// The page: ask for the API key once, then turn each dropped or chosen photo into a card that
// follows its job to the result (a ZIP into one that follows its batch).

import { Api } from "./api.js";
import { Card } from "./card.js";
import { analyseZip, isZip } from "./batch.js";
import { analysePhoto } from "./job.js";

const KEY_STORAGE = "silhouette-api-key"; // sessionStorage: gone when the tab closes
const apiBase = document.querySelector('meta[name="silhouette-api"]').content;

const keyForm = document.getElementById("key-form");
const keyInput = document.getElementById("api-key");
const keyError = document.getElementById("key-error");
const photos = document.getElementById("photos");
const dropZone = document.getElementById("drop-zone");
const fileInput = document.getElementById("file-input");
const cards = document.getElementById("cards");
const announcer = document.getElementById("announcer");
const cardTemplate = document.getElementById("photo-card");

let api = null;

function askForKey(message = "") {
  api = null;
  sessionStorage.removeItem(KEY_STORAGE);
  photos.hidden = true;
  keyForm.hidden = false;
  keyError.textContent = message;
  keyInput.focus();
}

function useKey(key) {
  api = new Api(key, apiBase);
  sessionStorage.setItem(KEY_STORAGE, key);
  keyForm.hidden = true;
  keyError.textContent = "";
  photos.hidden = false;
}

keyForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (!key) {
    keyError.textContent = "Enter the API key first.";
    return;
  }
  try {
    await new Api(key, apiBase).checkKey();
  } catch (error) {
    keyError.textContent = error.message;
    keyInput.focus();
    return;
  }
  keyInput.value = "";
  useKey(key);
  fileInput.focus();
});

document.getElementById("change-key").addEventListener("click", () => askForKey());

// Erases the card's job (photo, artifacts, record), if it has one, and removes the card.
async function removeCard(card) {
  if (card.erases) {
    try {
      await api.deleteJob(card.jobId);
    } catch (error) {
      card.showError(`Not deleted: ${error.message}`);
      return;
    }
  }
  const next = card.element.nextElementSibling ?? card.element.previousElementSibling;
  card.element.remove();
  announcer.textContent = `${card.filename} ${card.erases ? "deleted" : "removed"}.`;
  const nextDelete = next?.querySelector(".delete");
  (nextDelete && !nextDelete.hidden ? nextDelete : fileInput).focus();
}

async function analyse(file) {
  const card = new Card(cardTemplate, file, removeCard);
  cards.append(card.element);
  try {
    await (isZip(file) ? analyseZip : analysePhoto)(api, file, card);
  } catch (error) {
    if (error.status === 403) askForKey(error.message);
    card.showError(error.message);
  }
}

function analyseAll(files) {
  for (const file of files) analyse(file);
}

fileInput.addEventListener("change", () => {
  analyseAll(fileInput.files);
  fileInput.value = ""; // the same photo can be chosen again
});

// A photo dropped beside the zone must not make the browser leave the page to show it.
for (const type of ["dragover", "drop"]) {
  document.addEventListener(type, (event) => event.preventDefault());
}
dropZone.addEventListener("dragenter", () => dropZone.classList.add("dragging"));
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  dropZone.classList.remove("dragging");
  analyseAll(event.dataTransfer.files);
});

const savedKey = sessionStorage.getItem(KEY_STORAGE);
if (savedKey) useKey(savedKey);
else keyInput.focus();
